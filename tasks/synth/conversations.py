"""Generated conversations for measuring speaker counting on voices the diarizer was not tuned on.

A *voice* is one espeak-ng voice variant (its formants, i.e. its timbre) read with one
accent (an English variety or another language's phonemes on English text), one pitch and
one rate, all drawn once from the seed. The variants are split into a **tuning** half and a
**held-out** half, balanced by sex, so no voice — not even its timbre under another accent —
is in both halves; the test suite's dialogue voices (``en-us+m3``, ``f2``, ``m7``) are in the
tuning half, since the diarizer was tuned on them before. Each half gets the same number of
conversations with 1–4 speakers, with pauses only or with short overlaps at some turn
changes. Everything is deterministic from the seed; the WAVs are cached (see
:func:`conversations`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from affectflow.tasks.synth.speech import SENTENCES, DialogueTruth, TruthTurn, synthesise, write_wav

SAMPLE_RATE = 16000
# Human-sounding espeak-ng variants (robots, whispers and effects left out), by sex, one per family:
# variants whose voice files give the same formant frequencies (f2 = f5, steph = steph2 = steph3,
# Diogo = Henrique = Hugo = michel = miguel, differing only in amplitudes) are one vocal tract, so
# only the first is used.
FEMALE: tuple[str, ...] = (
    "f1",
    "f2",
    "f3",
    "f4",
    "Alicia",
    "Andrea",
    "Annie",
    "anika",
    "aunty",
    "belinda",
    "grandma",
    "linda",
)
FEMALE += ("shelby", "steph")
MALE: tuple[str, ...] = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "Alex",
    "Andy",
    "adam",
    "antonio",
    "benjamin",
    "boris",
)
MALE += ("caleb", "david", "Denis", "Diogo", "ed", "edward", "Gene", "Jacky", "john", "Lee", "Marco", "Mario")
MALE += ("max", "Michael", "Mike", "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro")
MALE += ("travis", "victor", "zac")
PER_HALF = 120  # conversations per half in the benchmark: one conversation is 0.8 points of a half's count rate
TUNED_BEFORE = ("m3", "f2", "m7")  # tests/test_speech_quality.py's voices: always in the tuning half
ACCENTS: tuple[str, ...] = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
)
ACCENTS += ("en-us-nyc", "fr-fr", "de", "es", "it", "nl", "pt-br", "pl", "sv", "hi")
SPEAKER_COUNTS = (1, 2, 3, 4)
TURNS = {1: 4, 2: 6, 3: 8, 4: 10}  # turns per conversation by number of speakers: ≥ 2 each


@dataclass(frozen=True)
class Voice:
    variant: str
    accent: str
    pitch: int  # espeak-ng -p, 0–99
    speed_wpm: int  # espeak-ng -s

    @property
    def name(self) -> str:
        return f"{self.accent}+{self.variant} p{self.pitch} s{self.speed_wpm}"

    def speak(self, text: str) -> np.ndarray:
        """(samples,) float32 at 16 kHz."""
        return synthesise(
            text, f"{self.accent}+{self.variant}", SAMPLE_RATE, speed_wpm=self.speed_wpm, pitch=self.pitch
        )


@dataclass(frozen=True)
class Conversation:
    name: str  # e.g. "tuning-07-3spk-overlap"
    half: str  # tuning | held-out
    voices: tuple[Voice, ...]
    overlap: bool  # some turn changes overlap by 0.2–0.5 s, else every change has a pause
    turns: tuple[tuple[int, str, float], ...]  # (voice index, text, gap before the turn in s; < 0: overlap)

    @property
    def num_speakers(self) -> int:
        return len(self.voices)


def voice_halves(seed: int = 0) -> dict[str, list[Voice]]:
    """{"tuning": voices, "held-out": voices}: each variant in exactly one half, both sexes in both."""
    rng = np.random.default_rng(seed)
    halves: dict[str, list[Voice]] = {"tuning": [], "held-out": []}
    for variants in (FEMALE, MALE):
        free = [v for v in variants if v not in TUNED_BEFORE]
        order = [free[k] for k in rng.permutation(len(free))]
        tuned = [v for v in variants if v in TUNED_BEFORE]
        split = len(variants) // 2 - len(tuned)
        for half, chosen in (("tuning", tuned + order[:split]), ("held-out", order[split:])):
            halves[half] += [
                Voice(v, str(rng.choice(ACCENTS)), int(rng.integers(30, 71)), int(rng.integers(135, 191)))
                for v in chosen
            ]
    return halves


def plan(seed: int = 0, per_half: int = PER_HALF) -> list[Conversation]:
    """``per_half`` conversations in each half: speaker counts 1–4 and pause/overlap in equal shares."""
    rng = np.random.default_rng(seed + 1)
    out = []
    for half, voices in voice_halves(seed).items():
        for k in range(per_half):
            n = SPEAKER_COUNTS[k % len(SPEAKER_COUNTS)]
            overlap = n > 1 and (k // len(SPEAKER_COUNTS)) % 2 == 1
            chosen = tuple(voices[i] for i in rng.choice(len(voices), n, replace=False))
            order = speaker_order(rng, n, TURNS[n])
            turns = []
            for j, who in enumerate(order):
                text = " ".join(SENTENCES[int(i)] for i in rng.choice(len(SENTENCES), int(rng.integers(1, 3))))
                gap = 0.0 if j == 0 else float(rng.uniform(0.3, 1.0))
                if overlap and j > 0 and rng.random() < 0.5:
                    gap = -float(rng.uniform(0.2, 0.5))
                turns.append((who, text, round(gap, 3)))
            name = f"{half}-{k:02d}-{n}spk-{'overlap' if overlap else 'pause'}"
            out.append(Conversation(name, half, chosen, overlap, tuple(turns)))
    return out


def speaker_order(rng: np.random.Generator, n: int, n_turns: int) -> list[int]:
    """Who speaks each turn: never the same voice twice in a row, every voice at least twice."""
    while True:
        order = [int(rng.integers(n))]
        for _ in range(n_turns - 1):
            order.append(int(rng.choice([v for v in range(n) if v != order[-1] or n == 1])))
        if all(order.count(v) >= 2 for v in range(n)):
            return order


def render(conversation: Conversation, path: Path, lead_s: float = 0.5) -> DialogueTruth:
    """Write the conversation as a 16 kHz WAV and return its truth turns (speaker = voice name)."""
    audios = [conversation.voices[who].speak(text) for who, text, _ in conversation.turns]
    starts, cursor = [], lead_s
    for audio, (_, _, gap) in zip(audios, conversation.turns, strict=True):
        cursor += gap
        starts.append(cursor)
        cursor += len(audio) / SAMPLE_RATE
    duration = max(s + len(a) / SAMPLE_RATE for s, a in zip(starts, audios, strict=True)) + lead_s
    mix = np.zeros(round(duration * SAMPLE_RATE), np.float32)
    turns = []
    for (who, _, _), audio, start in zip(conversation.turns, audios, starts, strict=True):
        offset = round(start * SAMPLE_RATE)
        mix[offset : offset + len(audio)] += audio
        turns.append(TruthTurn(conversation.voices[who].name, start, start + len(audio) / SAMPLE_RATE))
    write_wav(path, mix, SAMPLE_RATE)
    return DialogueTruth(path, duration, turns, [])


def conversations(directory: Path, seed: int = 0, per_half: int = PER_HALF) -> list[tuple[Conversation, DialogueTruth]]:
    """Every planned conversation with its WAV under ``directory`` (rendered once, then read back)."""
    out = []
    for conversation in plan(seed, per_half):
        wav, meta = directory / f"{conversation.name}.wav", directory / f"{conversation.name}.json"
        saved = json.loads(meta.read_text()) if meta.is_file() else {}
        if wav.is_file() and saved.get("plan") == repr(conversation):  # same seed and generator: reuse
            truth = DialogueTruth(wav, saved["duration"], [TruthTurn(**t) for t in saved["turns"]], [])
        else:
            truth = render(conversation, wav)
            turns = [asdict(t) for t in truth.turns]
            meta.write_text(json.dumps({"plan": repr(conversation), "duration": truth.duration, "turns": turns}))
        out.append((conversation, truth))
    return out
