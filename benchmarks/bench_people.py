"""The people step: linking speed at scale (synthetic embeddings) and the thresholds' calibration (real models).

    .venv/bin/python benchmarks/bench_people.py                  # link 100,000 tracks, then 1 new video
    .venv/bin/python benchmarks/bench_people.py --tracks 20000   # a smaller corpus
    .venv/bin/python benchmarks/bench_people.py --calibrate      # similarity distributions on real faces/voices

Speed: generated identity embeddings (tasks/synth/people.py: face 128-d and voice 256-d, 10 tracks a
video, 70 % with a voice) are linked from nothing in corpus order (``link``), then one more video is
linked against the stored people (the nightly case). Reports wall time, peak RSS (``ru_maxrss``) and
the load average. Target (issue 18): 100,000 tracks in under 60 s on 2 cores.

Calibration: track means of SFace embeddings of the four recurring real people and three strangers
(tasks/synth/people.py), each track 4 frames at varied size, lighting and angle, through the faces
stage's own detection, alignment and embedding; and per-voice means of the default diarizer's GE2E
embeddings of espeak-ng voices, each "voice" 3 sentences. Prints same-person and different-person
cosine quantiles: LinkConfig's thresholds sit between them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from affectflow.tasks.people.config import LinkConfig
from affectflow.tasks.people.link import Unit, UnitKey, link
from affectflow.tasks.synth.people import identity_corpus


def units_of(videos, first: int = 0) -> list[Unit]:  # type: ignore[no-untyped-def]
    units = []
    for v, tracks in enumerate(videos, start=first):
        for t in tracks:
            vectors = {}
            if t.face is not None:
                vectors["face"] = ("face: synthetic", t.face)
            if t.voice is not None:
                vectors["voice"] = ("voice: synthetic", t.voice)
            units.append(Unit(UnitKey(f"v{v:06d}", t.track_id, t.speaker), t.first_t, t.last_t, vectors))
    return units


def bench_speed(n_tracks: int, per_video: int, n_people: int) -> dict[str, float]:
    n_videos = n_tracks // per_video
    videos = identity_corpus(n_videos, n_people, per_video=per_video - 1, strangers_per_video=1, seed=0)
    units = units_of(videos)
    truth = [t.person for tracks in videos for t in tracks]
    started = time.perf_counter()
    assigned = link(units, {}, LinkConfig())
    full_s = time.perf_counter() - started
    found = [assigned[u.key].person_id for u in units]
    extra = units_of(identity_corpus(1, n_people, per_video=per_video - 1, seed=0, first_video=n_videos), n_videos)
    started = time.perf_counter()
    link(units + extra, assigned, LinkConfig())
    new_video_s = time.perf_counter() - started
    return {
        "tracks": len(units),
        "videos": n_videos,
        "people_found": len(set(found)),
        "people_true": len(set(truth)),
        **quality(truth, found),
        "link_s": round(full_s, 2),
        "new_video_s": round(new_video_s, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load": round(os.getloadavg()[0], 1),
    }


def quality(truth: list[str], found: list[str]) -> dict[str, float]:
    """Purity (a found person's units that are its majority individual) and completeness (the converse)."""

    def majority_share(by: list[str], of: list[str]) -> float:
        groups: dict[str, Counter[str]] = defaultdict(Counter)
        for b, o in zip(by, of, strict=True):
            groups[b][o] += 1
        return round(sum(c.most_common(1)[0][1] for c in groups.values()) / len(by), 4)

    return {"purity": majority_share(found, truth), "completeness": majority_share(truth, found)}


def quantiles(same: list[float], different: list[float]) -> dict[str, list[float]]:
    q = [0.0, 0.01, 0.05, 0.5, 0.95, 0.99, 1.0]
    return {
        "quantiles": q,
        "same": [round(float(x), 3) for x in np.quantile(same, q)],
        "different": [round(float(x), 3) for x in np.quantile(different, q)],
    }


def pairs(vectors: np.ndarray, labels: list[str]) -> tuple[list[float], list[float]]:
    sims = vectors @ vectors.T
    same, different = [], []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            (same if labels[i] == labels[j] else different).append(float(sims[i, j]))
    return same, different


def face_tracks(n_tracks: int = 10, frames: int = 4, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Track-mean SFace embeddings of every real person, through the faces stage's own functions."""
    from affectflow.tasks.faces.backends import load_backend
    from affectflow.tasks.faces.stage import FacesConfig, detect_faces
    from affectflow.tasks.people.identity import unit_mean
    from affectflow.tasks.settings import settings
    from affectflow.tasks.synth.people import RECURRING, STRANGERS, person_photo, varied_frame
    from affectflow.tasks.synth.pyfeat import fetch_pyfeat_data

    pyfeat = fetch_pyfeat_data(settings().cache())
    config = FacesConfig()
    backend = load_backend(config.backend, None, config.min_score, "cpu")
    rng = np.random.default_rng(seed)
    vectors, labels = [], []
    for person in RECURRING + STRANGERS:
        photo = person_photo(person, pyfeat)
        for _ in range(n_tracks):
            crops = []
            for _ in range(frames):
                frame = varied_frame([photo], rng)
                found = detect_faces(backend, frame, config)
                if found:
                    best = max(found, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
                    crops.append(backend.align(frame, best))
            if crops:
                vectors.append(unit_mean(backend.embed(crops)))
                labels.append(person)
    return np.stack(vectors), labels


def voice_tracks(n_tracks: int = 4, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Per-voice mean GE2E embeddings (the default diarizer's model) of espeak-ng voices."""
    from affectflow.tasks.people.identity import CHUNK_S, SAMPLE_RATE, unit_mean, voice_encoder
    from affectflow.tasks.speech.diarize import DiarizeConfig
    from affectflow.tasks.synth.speech import SENTENCES, synthesise

    voices = ("en-us+f2", "en-gb+f3", "en-us+f4", "en-us+m3", "en-us+m7", "en-gb-scotland+m1", "en-029+f1")
    embed = voice_encoder(DiarizeConfig(device="cpu"))
    rng = np.random.default_rng(seed)
    vectors, labels = [], []
    for voice in voices:
        for _ in range(n_tracks):
            texts = rng.choice(len(SENTENCES), 3, replace=False)
            audio = np.concatenate([synthesise(SENTENCES[i], voice) for i in texts])
            step = int(CHUNK_S * SAMPLE_RATE)
            chunks = [audio[s : s + step] for s in range(0, len(audio) - SAMPLE_RATE, step)]
            vectors.append(unit_mean(embed(chunks)))
            labels.append(voice)
    return np.stack(vectors), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--per-video", type=int, default=10)
    parser.add_argument("--people", type=int, default=20_000, help="recurring people in the corpus")
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args()
    if args.calibrate:
        faces = face_tracks()
        print(json.dumps({"face (SFace track means)": quantiles(*pairs(*faces))}), flush=True)
        voices = voice_tracks()
        print(json.dumps({"voice (GE2E voice means)": quantiles(*pairs(*voices))}), flush=True)
        return
    print(json.dumps(bench_speed(args.tracks, args.per_video, args.people)))


if __name__ == "__main__":
    main()
