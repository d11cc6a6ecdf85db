"""The Aff-Wild2 reader on the official layout, and windows over the features cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from affectflow.model.data import (
    DataError,
    WindowDataset,
    at_rate,
    feature_stats,
    find_videos,
    frame_presence,
    load_video,
    read_annotation,
    save_features,
)
from tests.fake_affwild2 import INVALID_FRAMES, MISSING_FACES, SPLIT_VIDEOS, make_affwild2

pytestmark = pytest.mark.models  # a torch Dataset: the unit tier never imports torch


@pytest.fixture(scope="module")
def affwild2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, np.ndarray]]:
    root, cache = tmp_path_factory.mktemp("affwild2"), tmp_path_factory.mktemp("cache")
    return root, cache, make_affwild2(root, cache)


def test_finds_the_official_va_splits_and_each_subject_of_two_person_videos(affwild2) -> None:
    root, _, _ = affwild2
    train, val = find_videos(root, "train"), find_videos(root, "validation")
    assert [v.name for v in train] == sorted(SPLIT_VIDEOS["Train_Set"])  # the EXPR Train_Set is ignored
    assert [v.name for v in val] == sorted(SPLIT_VIDEOS["Validation_Set"])
    left = next(v for v in train if v.name.endswith("_left"))
    assert left.annotation.parent.name == "Train_Set" and left.split == "train"
    assert left.frames_dir == root / "cropped_aligned" / "10-60-1280x720_left"


def test_annotations_keep_minus_five_and_the_odd_frame_count(affwild2) -> None:
    root, _, written = affwild2
    video = next(v for v in find_videos(root, "train") if v.name == "1-30-1280x720")
    labels = read_annotation(video.annotation)
    assert labels.shape == (331, 2)
    assert (labels[INVALID_FRAMES] == -5).all()
    np.testing.assert_allclose(labels, written["1-30-1280x720"], atol=1e-3)


def test_bad_annotations_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "v.txt"
    bad.write_text("arousal,valence\n0.1,0.2\n")
    with pytest.raises(DataError, match=r"v\.txt: first line must be 'valence,arousal'"):
        read_annotation(bad)
    bad.write_text("valence,arousal\n0.1;0.2\n")
    with pytest.raises(DataError, match=r"v\.txt: not two comma-separated numbers"):
        read_annotation(bad)
    with pytest.raises(DataError, match="no Validation_Set folder"):
        find_videos(tmp_path, "validation")


def test_missing_face_crops_mask_the_visual_frames_by_index(affwild2) -> None:
    root, cache, _ = affwild2
    video = next(v for v in find_videos(root, "validation") if v.name == "video74")
    present = frame_presence(video.frames_dir, 173)
    assert (~present).nonzero()[0].tolist() == list(MISSING_FACES)
    data = load_video(video, cache)
    assert data.n_frames == 173
    assert (~data.masks["visual"]).nonzero()[0].tolist() == list(MISSING_FACES)
    assert data.masks["audio"].all() and data.masks["text"].all()


def test_features_are_aligned_to_the_annotation_length(affwild2, tmp_path: Path) -> None:
    root, _, _ = affwild2
    video = next(v for v in find_videos(root, "validation") if v.name == "video74")  # 173 labelled frames
    for rows in (170, 176):  # the extractor saw 3 frames fewer / more than the annotation
        short = tmp_path / str(rows)
        for m in ("visual", "audio", "text"):
            (short / video.name).mkdir(parents=True, exist_ok=True)
            save_features(short / video.name, {m: np.ones((rows, 4), dtype=np.float32)})
        data = load_video(video, short)
        assert all(x.shape == (173, 4) for x in data.features.values())
        assert data.masks["audio"].sum() == min(rows, 173)


def test_training_windows_end_at_the_video_end_and_pad_only_short_videos(affwild2) -> None:
    root, cache, _ = affwild2
    video = load_video(next(v for v in find_videos(root, "train") if v.name == "1-30-1280x720"), cache)  # 331
    dataset = WindowDataset([video], seq_len=300, hop=200)
    assert [dataset[i]["start"] for i in range(len(dataset))] == [0, 31]
    last = dataset[1]
    assert last["audio"].shape == (300, 6) and last["audio_mask"].all()
    np.testing.assert_array_equal(last["labels"].numpy(), video.labels[31:])
    first = dataset[0]
    assert not first["label_valid"][INVALID_FRAMES].any() and first["label_valid"][:20].all()
    assert (first["labels"][INVALID_FRAMES] == -5).all()
    short = load_video(next(v for v in find_videos(root, "validation") if v.name == "video74"), cache)  # 173
    (only,) = WindowDataset([short], seq_len=300, hop=200)
    assert only["audio_mask"][:173].all() and not only["audio_mask"][173:].any()
    assert not only["label_valid"][173:].any() and (only["labels"][173:] == -5).all()


def test_left_out_modalities_read_as_missing(affwild2) -> None:
    root, cache, _ = affwild2
    video = load_video(find_videos(root, "validation")[0], cache)
    item = WindowDataset([video], seq_len=100, hop=100, modalities=("audio",))[0]
    assert item["audio_mask"].all() and not item["visual_mask"].any() and not item["text_mask"].any()


def test_feature_statistics_skip_masked_frames(affwild2) -> None:
    root, cache, _ = affwild2
    video = load_video(find_videos(root, "validation")[1], cache)
    video.features["audio"] = np.array(video.features["audio"])
    video.features["audio"][~video.masks["visual"]] = 1e6  # would wreck the audio stats if counted
    video.masks["audio"] = video.masks["visual"]
    mean, std = feature_stats([video])["audio"]
    expected = np.asarray(video.features["audio"])[video.masks["audio"]]
    np.testing.assert_allclose(mean, expected.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(std, expected.std(0), rtol=1e-3)


def test_a_missing_cache_says_what_to_do(affwild2, tmp_path: Path) -> None:
    root, _, _ = affwild2
    with pytest.raises(DataError, match="missing cached visual features; run feature extraction"):
        load_video(find_videos(root, "validation")[0], tmp_path)


def test_a_video_at_the_run_rate_takes_the_nearest_frames_and_is_scored_on_every_frame(affwild2) -> None:
    root, cache, _ = affwild2
    video = load_video(find_videos(root, "validation")[0], cache)  # 241 frames at 30 fps
    assert video.fps == 30.0
    sampled = at_rate(video, 5.0)
    assert sampled.fps == 5.0 and sampled.n_frames == 41  # t = 0, 0.2, …, 8.0 s of 8.0 s
    assert sampled.annotated is not None
    assert list(sampled.annotated.frame[:4]) == [0, 6, 12, 18] and sampled.annotated.frame[-1] == 240
    assert np.array_equal(sampled.labels, video.labels[sampled.annotated.frame])
    assert np.array_equal(np.asarray(sampled.features["audio"]), np.asarray(video.features["audio"])[::6])
    assert np.array_equal(sampled.masks["visual"], video.masks["visual"][::6])
    ramp = np.stack([np.arange(41.0), -np.arange(41.0)], 1)  # predictions at the sampled rows
    every = sampled.annotated.upsample(ramp)
    assert every.shape == (241, 2) and every[3, 0] == pytest.approx(0.5) and every[240, 1] == -40
    assert at_rate(video, 60.0).n_frames == 241  # never above the video's own rate


def test_a_cache_without_a_frame_rate_cannot_be_resampled(affwild2, tmp_path: Path) -> None:
    root, cache, _ = affwild2
    video = find_videos(root, "validation")[0]
    bare = tmp_path / video.name
    bare.mkdir()
    for path in (cache / video.name).glob("*.npy"):
        (bare / path.name).write_bytes(path.read_bytes())
    loaded = load_video(video, tmp_path)
    assert loaded.fps is None
    with pytest.raises(DataError, match=r"records no frame rate.*--fps 0"):
        at_rate(loaded, 5.0)
