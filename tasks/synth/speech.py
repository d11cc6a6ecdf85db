"""Multi-speaker dialogues from espeak-ng with known text, turns and word times.

Each turn is synthesised whole (natural prosody); a word's end time is the speech
length of the turn's prefix that ends with that word, so every word has a truth
(speaker, start, end) without forced alignment. Turns are laid on one timeline with
a pause between them, or overlapping by ``overlap_s``, and summed (numpy).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly

SILENCE_LEVEL = 1e-3  # |amplitude| under this is silence when trimming synthesised speech
VOICES = ("en-us+m3", "en-us+f2", "en-us+m7")

SENTENCES = (
    "good morning everyone thank you for joining the call today",
    "we need to finish the report before the end of the week",
    "I think the new design looks much better than the old one",
    "the train was late again so I missed the first meeting",
    "can you send me the numbers from last month please",
    "my sister is moving to a small town near the coast",
    "the garden needs water because it has not rained for days",
    "we should order more paper for the office printer",
    "the children played football in the park after school",
    "I will call the doctor tomorrow morning to book a visit",
    "the coffee in the kitchen is fresh if you want some",
    "our team won the final game of the season last night",
    "please close the window when you leave the room",
    "the price of bread went up again this year",
    "she bought a new bicycle and rides it to work every day",
    "the museum opens at ten and closes at six",
    "we are planning a trip to the mountains in the summer",
    "he forgot his keys at home and had to wait outside",
    "the movie was long but the music was wonderful",
    "let us meet again next week to check the progress",
    "the bank sent me a letter about my new card",
    "my brother cooked dinner for the whole family on sunday",
    "the road to the village is closed because of the snow",
    "I read an interesting book about the history of the city",
)


@dataclass(frozen=True)
class TruthWord:
    word: str
    start: float  # seconds
    end: float
    speaker: str


@dataclass(frozen=True)
class TruthTurn:
    speaker: str
    start: float
    end: float


@dataclass(frozen=True)
class DialogueTruth:
    wav: Path
    duration: float
    turns: list[TruthTurn]
    words: list[TruthWord]

    @property
    def text(self) -> str:
        return " ".join(word.word for word in self.words)

    @property
    def speakers(self) -> set[str]:
        return {turn.speaker for turn in self.turns}


def synthesise(
    text: str, voice: str, sample_rate: int = 16000, *, speed_wpm: int = 160, pitch: int = 50, amplitude: int = 100
) -> np.ndarray:
    """(samples,) float32 speech of ``text`` at ``sample_rate`` Hz, leading/trailing silence trimmed.

    espeak-ng settings: ``voice`` (-v), ``speed_wpm`` words per minute (-s), ``pitch`` 0–99
    (-p) and ``amplitude`` 0–200 (-a); 50 and 100 are espeak-ng's own defaults.
    """
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng not found: it voices the synthetic speech (`apt-get install espeak-ng`)")
    command = [espeak, "-v", voice, "-s", str(speed_wpm), "-p", str(pitch), "-a", str(amplitude)]
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run([*command, "-w", tmp.name, text], check=True, capture_output=True)
        speech, espeak_rate = soundfile.read(tmp.name, dtype="float32")  # (samples,) at espeak-ng's 22.05 kHz
    audio = resample_poly(speech, sample_rate, espeak_rate).astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > SILENCE_LEVEL)
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio[:0]


def word_ends(text: str, voice: str, sample_rate: int) -> list[float]:
    """Seconds from the turn's start to the end of each word (speech length of each prefix)."""
    words = text.split()
    prefixes = [" ".join(words[: k + 1]) for k in range(len(words))]
    with ThreadPoolExecutor(max_workers=4) as pool:
        lengths = list(pool.map(lambda prefix: len(synthesise(prefix, voice, sample_rate)), prefixes))
    return [n / sample_rate for n in lengths]


def make_dialogue(
    path: Path,
    turns: Sequence[tuple[str, str]],
    *,
    pause_s: float = 0.6,
    overlap_s: float = 0.0,
    sample_rate: int = 16000,
    lead_s: float = 0.5,
) -> DialogueTruth:
    """Write a dialogue of (voice, text) turns as 16-bit mono WAV and return its truth.

    Consecutive turns are separated by ``pause_s`` of silence, or, when ``overlap_s`` > 0,
    each turn starts ``overlap_s`` before the previous one ends (a short overlap).
    """
    audios = [synthesise(text, voice, sample_rate) for voice, text in turns]
    starts, cursor = [], lead_s
    for audio in audios:
        starts.append(cursor)
        cursor += len(audio) / sample_rate + (pause_s if overlap_s <= 0 else -overlap_s)
    duration = max(s + len(a) / sample_rate for s, a in zip(starts, audios, strict=True)) + lead_s
    mix = np.zeros(round(duration * sample_rate), np.float32)
    truth_turns, truth_words = [], []
    for (voice, text), audio, start in zip(turns, audios, starts, strict=True):
        offset = round(start * sample_rate)
        mix[offset : offset + len(audio)] += audio
        truth_turns.append(TruthTurn(voice, start, start + len(audio) / sample_rate))
        ends = word_ends(text, voice, sample_rate)
        word_starts = [0.0, *ends[:-1]]
        truth_words += [
            TruthWord(word, start + s, start + min(e, len(audio) / sample_rate), voice)
            for word, s, e in zip(text.split(), word_starts, ends, strict=True)
        ]
    write_wav(path, mix, sample_rate)
    return DialogueTruth(path, duration, truth_turns, truth_words)


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> Path:
    """(samples,) float audio in [-1, 1] as 16-bit mono PCM WAV (what the media stage hands to speech stages)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16")
    return path


def dialogue_turns(n_turns: int, voices: Sequence[str], first_sentence: int = 0) -> list[tuple[str, str]]:
    """Turns that cycle through ``voices`` and through the sentence list."""
    return [(voices[k % len(voices)], SENTENCES[(first_sentence + k) % len(SENTENCES)]) for k in range(n_turns)]


def make_long_speech(path: Path, minutes: float = 5.0, voices: Sequence[str] = VOICES) -> DialogueTruth:
    """About ``minutes`` of three-speaker conversation, for benchmarks (no per-word truth needed)."""
    sample_rate, pause_s = 16000, 0.4
    turns, length, k = [], 0.0, 0
    while length < minutes * 60:
        voice, text = voices[k % len(voices)], " ".join(SENTENCES[(2 * k + j) % len(SENTENCES)] for j in range(2))
        turns.append((voice, text))
        length += len(text.split()) * 0.27 + pause_s  # espeak-ng at 160 wpm: ≈ 0.27 s per word
        k += 1
    return make_dialogue(path, turns, pause_s=pause_s, sample_rate=sample_rate)
