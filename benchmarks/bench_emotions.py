"""Benchmark: the emotions stage's cost per analysed frame, by step.

Builds a generated clip (a real aligned face from skimage's astronaut, jittered per frame;
espeak-ng speech over most of it; 5 fps), with ``--tracks`` face tracks, then times each
step on warm models (the first, loading run is reported apart) as medians of ``--repeat`` runs:

- visual: FER mini-Xception features of every face row;
- audio: eGeMAPS LLDs of the track + window summaries at every timeline step;
- text: the words around every step + MiniLM embeddings of the distinct windows;
- rcma: the shipped checkpoint over all tracks' windows (batched), blending included;
- teachers: the baseline ensemble on the same features.

    .venv/bin/python benchmarks/bench_emotions.py [--seconds 60] [--tracks 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from affectflow.flows.distill import FPS
from affectflow.tasks.emotions.infer import EmotionConfig, load_predictor
from affectflow.tasks.features.text import window_texts
from affectflow.tasks.features.timeline import FaceRows, audio_features, extract_tracks, visual_features
from affectflow.tasks.synth.speech import SENTENCES
from tests.emotion_clips import Segment, astronaut_crop, make_clip


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(first run, median of the next ``repeat``) in seconds."""
    started = time.perf_counter()
    fn()
    first = time.perf_counter() - started
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return first, statistics.median(runs)


def with_tracks(faces: FaceRows, n: int, directory: Path) -> FaceRows:
    """The same face rows repeated as ``n`` tracks (what a two-person video costs)."""
    crops = np.load(faces.crops_path)
    np.save(directory / "tracks.npy", np.concatenate([crops] * n))
    return FaceRows(
        np.repeat(np.arange(n), len(faces.t)),
        np.tile(faces.frame, n),
        np.tile(faces.t, n),
        directory / "tracks.npy",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--tracks", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        face = astronaut_crop()
        n_segments = int(args.seconds // 5)
        segments = [Segment(5.0, face, SENTENCES[i % len(SENTENCES)]) for i in range(n_segments)]
        clip = make_clip(segments, directory)
        faces = with_tracks(clip.faces, args.tracks, directory)
        rcma, teachers = load_predictor(EmotionConfig()), load_predictor(EmotionConfig(model="teachers"))
        extractors = rcma.extractors
        tracks = extract_tracks(faces, clip.wav, clip.words, extractors, FPS)
        times = np.concatenate([tr.t for tr in tracks])
        n_frames = len(faces.t)
        steps = {
            "visual (fer)": lambda: visual_features(faces, extractors.visual),
            "audio (egemaps)": lambda: audio_features(clip.wav, times, extractors.audio),
            "text (minilm)": lambda: extractors.text(window_texts(clip.words, times)),
            "rcma inference": lambda: rcma.predict(tracks),
            "teachers baseline": lambda: teachers.predict(tracks),
        }
        print(f"{args.seconds:.0f} s clip, {args.tracks} tracks, {n_frames} analysed face frames at {FPS:g} fps")
        print(f"{'step':<20} {'ms/frame':>9} {'first run ms/frame':>19}")
        for name, fn in steps.items():
            first, median = timed(fn, args.repeat)
            print(f"{name:<20} {1000 * median / n_frames:>9.2f} {1000 * first / n_frames:>19.2f}")


if __name__ == "__main__":
    main()
