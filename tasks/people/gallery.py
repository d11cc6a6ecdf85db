"""Known people: a folder per named person, with face photos and/or voice clips, named on first sight.

``DIR/Jane Doe/*.jpg|*.png`` (one face per photo: the largest is taken) and ``DIR/Jane Doe/*.wav``
(mono 16 kHz). Each person becomes one gallery unit with the same embedders a run uses (the faces
backend's embedding of the aligned crops, the diarizer's voice embedding), so a corpus track that
matches joins the named person. Gallery units are never written: only the tracks they name are.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from affectflow.tasks.faces.stage import FacesConfig, detect_faces
from affectflow.tasks.people.identity import CHUNK_S, SAMPLE_RATE, embedding_model, unit_mean, voice_encoder
from affectflow.tasks.people.link import GALLERY, Unit, UnitKey
from affectflow.tasks.speech.diarize import DiarizeConfig, describe

PHOTOS = (".jpg", ".jpeg", ".png")


def gallery_units(directory: Path, faces: FacesConfig, diarize: DiarizeConfig) -> dict[str, Unit]:
    """Name -> its gallery unit (face and/or voice vector); a folder with nothing usable is an error."""
    from affectflow.tasks.faces.backends import load_backend

    folders = sorted(p for p in directory.iterdir() if p.is_dir())
    if not folders:
        raise FileNotFoundError(f"{directory}: no folder per person (DIR/<name>/*.jpg|*.png|*.wav)")
    backend = load_backend(faces.backend, faces.insightface_dir, faces.min_score, faces.device)
    units = {}
    for folder in folders:
        unit = Unit(UnitKey(f"{GALLERY}{folder.name}", 0, None))
        crops = []
        for photo in sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTOS):
            bgr = cv2.imread(str(photo))
            if bgr is None:
                raise ValueError(f"{photo}: not a readable image")
            found = detect_faces(backend, bgr, faces)
            if found:
                best = max(found, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
                crops.append(backend.align(bgr, best))
        if crops:
            unit.vectors["face"] = (f"face: {embedding_model(backend.description)}", unit_mean(backend.embed(crops)))
        clips = sorted(folder.glob("*.wav"))
        if clips:
            unit.vectors["voice"] = (f"voice: {describe(diarize)}", _voice(clips, diarize))
        if not unit.vectors:
            raise ValueError(f"{folder}: no face found in its photos and no .wav clip")
        units[folder.name] = unit
    return units


def _voice(clips: list[Path], diarize: DiarizeConfig) -> np.ndarray:
    from affectflow.tasks.media.audio import read_wav

    step = int(CHUNK_S * SAMPLE_RATE)
    chunks = [c for clip in clips for a in [read_wav(clip)] for c in (a[s : s + step] for s in range(0, len(a), step))]
    vectors = voice_encoder(diarize)([c for c in chunks if len(c) >= SAMPLE_RATE])
    return unit_mean(vectors[np.isfinite(vectors).all(axis=1)])
