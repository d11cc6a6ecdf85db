"""Speech stages without models: speaker attribution, configs, empty inputs, offline checks."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from affectflow.tasks.media.audio import extract_audio
from affectflow.tasks.media.probe import probe
from affectflow.tasks.speech.attribution import assign_speakers
from affectflow.tasks.speech.diarize import DiarizeConfig, SpeakerTurn, check_pipeline_dir, diarize
from affectflow.tasks.speech.transcribe import (
    CHUNK_S,
    TURN_PAD_S,
    TranscribeConfig,
    Word,
    chunk_index,
    chunks_of_turns,
    resolve_model_dir,
    transcribe,
)
from affectflow.tasks.synth.bad import ffmpeg, make_testsrc_video
from affectflow.tasks.synth.speech import write_wav

pytestmark = pytest.mark.models


def word(text: str, start: float, end: float) -> Word:
    return Word(text, start, end, 0.9, 0)


def test_each_word_gets_the_speaker_it_overlaps_most() -> None:
    turns = [SpeakerTurn("A", 0.0, 2.0), SpeakerTurn("B", 1.8, 4.0)]
    words = [word("hello", 0.2, 0.6), word("there", 1.7, 2.0), word("friend", 1.9, 2.6), word("bye", 3.0, 3.4)]
    assert [w.speaker for w in assign_speakers(words, turns)] == ["A", "A", "B", "B"]


def test_a_word_inside_overlapped_speech_goes_to_the_newcomer() -> None:
    turns = [SpeakerTurn("A", 0.0, 2.2), SpeakerTurn("B", 1.9, 4.0)]
    assert assign_speakers([word("we", 2.0, 2.1), word("zero", 2.05, 2.05)], turns)[0].speaker == "B"
    assert assign_speakers([word("zero", 2.05, 2.05)], turns)[0].speaker == "B"


def test_words_in_silence_get_no_speaker() -> None:
    turns = [SpeakerTurn("A", 0.0, 1.0), SpeakerTurn("B", 3.0, 4.0)]
    attributed = assign_speakers([word("um", 1.5, 2.5), word("yes", 3.2, 3.5)], turns)
    assert [w.speaker for w in attributed] == [None, "B"]
    assert assign_speakers([word("alone", 0.0, 1.0)], []) == [word("alone", 0.0, 1.0)]


def test_a_speaker_with_several_short_turns_beats_one_longer_overlap() -> None:
    turns = [SpeakerTurn("A", 0.0, 0.3), SpeakerTurn("A", 0.5, 0.8), SpeakerTurn("B", 0.25, 0.75)]
    assert assign_speakers([word("long", 0.0, 1.0)], turns)[0].speaker == "A"


def test_configs_reject_what_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AFFECTFLOW_PYANNOTE_DIR", raising=False)
    with pytest.raises(ValueError, match="AFFECTFLOW_PYANNOTE_DIR"):
        DiarizeConfig(backend="pyannote")
    with pytest.raises(ValueError, match="unknown diarization backend"):
        DiarizeConfig(backend="magic")
    with pytest.raises(ValueError, match="min_speakers"):
        DiarizeConfig(min_speakers=3, max_speakers=2)
    with pytest.raises(ValueError, match="batch_size"):
        TranscribeConfig(batch_size=0)


def test_configs_read_model_dirs_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("pipeline", "whisper", "align"):
        (tmp_path / name).mkdir()  # tasks/settings.py refuses a directory that does not exist
    monkeypatch.setenv("AFFECTFLOW_PYANNOTE_DIR", str(tmp_path / "pipeline"))
    monkeypatch.setenv("AFFECTFLOW_WHISPER_DIR", str(tmp_path / "whisper"))
    monkeypatch.setenv("AFFECTFLOW_ALIGN_MODEL_DIR", str(tmp_path / "align"))
    assert DiarizeConfig(backend="pyannote").pipeline_dir == str(tmp_path / "pipeline")
    config = TranscribeConfig()
    assert (config.model_dir, config.align_model_dir) == (str(tmp_path / "whisper"), str(tmp_path / "align"))


def test_no_audio_and_silence_give_empty_results_without_loading_models(tmp_path: Path) -> None:
    silent = write_wav(tmp_path / "silent.wav", np.zeros(16000 * 3, np.float32), 16000)
    for wav in (None, silent):
        assert diarize(wav, DiarizeConfig()).turns == []
        result = transcribe(wav, TranscribeConfig(model_dir="tiny.en"))
        assert (result.words, result.language) == ([], "en")


def test_videos_without_audio_or_with_a_silent_track_give_empty_results(tmp_path: Path) -> None:
    mute = make_testsrc_video(tmp_path / "mute.mp4", 1.0, audio=False)
    quiet = tmp_path / "quiet.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x120:rate=10",
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=44100:cl=stereo",
        "-t",
        "1.5",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(quiet),
    )
    for video in (mute, quiet):
        wav = extract_audio(video, probe(video), tmp_path / f"{video.stem}.wav")
        assert diarize(wav, DiarizeConfig()).turns == []
        assert transcribe(wav, TranscribeConfig(model_dir="tiny.en")).words == []


def test_pipeline_dirs_that_would_download_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"config\.yaml not found"):
        check_pipeline_dir(tmp_path)
    (tmp_path / "config.yaml").write_text(
        "pipeline:\n  name: pyannote.audio.pipelines.SpeakerDiarization\n  params:\n"
        "    segmentation: pyannote/segmentation-3.0\n    embedding: $model/embedding\n    plda: $model/plda\n"
    )
    with pytest.raises(FileNotFoundError, match=r"'pyannote/segmentation-3\.0' is not a local file"):
        check_pipeline_dir(tmp_path)


def test_a_whisper_dir_without_model_files_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="AFFECTFLOW_WHISPER_DIR"):
        resolve_model_dir(str(tmp_path))


def test_words_index_the_vad_chunk_they_start_in() -> None:
    chunks = [{"start": 0.5, "end": 20.0}, {"start": 21.0, "end": 45.0}]
    assert [chunk_index(chunks, t) for t in (0.5, 19.9, 21.0, 44.0)] == [0, 0, 1, 1]


def clustering(threshold: float = 0.675, size_bonus: float = 0.6, min_cluster_size: int = 5, tolerance: float = 0.0):  # type: ignore[no-untyped-def]
    from affectflow.tasks.speech.clustering import Calibration, ConstrainedClustering

    return ConstrainedClustering(Calibration(np.zeros(256), threshold, size_bonus, min_cluster_size, tolerance), 8)


def voices(rng: np.random.Generator, true_k: int, per_voice: int = 20) -> np.ndarray:
    centres = np.linalg.qr(rng.normal(size=(256, 4)))[0].T[:true_k]  # orthogonal unit voices
    return np.concatenate([c + 0.04 * rng.normal(size=(per_voice, 256)) for c in centres])  # (k * per_voice, 256)


def test_constrained_clustering_counts_well_separated_voices() -> None:
    rng = np.random.default_rng(0)
    for true_k in (1, 2, 3, 4):
        embeddings = voices(rng, true_k)
        clusters = clustering().cluster_windows(embeddings, np.arange(len(embeddings)), 1, 8)
        assert len(set(clusters)) == true_k
        assert all(len(set(clusters[i * 20 : (i + 1) * 20])) == 1 for i in range(true_k))


def test_one_window_s_local_speakers_are_never_one_cluster() -> None:
    rng = np.random.default_rng(2)
    embeddings = voices(rng, 1, per_voice=30)  # one voice everywhere ...
    chunks = np.repeat(np.arange(15), 2)  # ... but the segmentation saw two speakers in every window
    for tolerance in (0.0, 0.3):  # in every window: far more cannot-links than any tolerance forgives
        clusters = clustering(tolerance=tolerance).cluster_windows(embeddings, chunks, 1, 8)
        assert len(set(clusters)) == 2
        assert all(clusters[2 * w] != clusters[2 * w + 1] for w in range(15))


def test_one_window_that_split_a_voice_does_not_keep_it_apart_within_the_tolerance() -> None:
    from affectflow.tasks.speech.agglomeration import merge

    rng = np.random.default_rng(5)
    embeddings = voices(rng, 2, per_voice=20)  # voice A: 0..19, voice B: 20..39
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    halves = np.repeat([0, 1, 2], [10, 10, 20])  # A in two clusters of 10, B in one
    cannot = np.zeros((40, 40), dtype=bool)
    cannot[0, 10] = cannot[10, 0] = True  # one window where the segmentation saw A as two local speakers
    assert len(set(merge(unit, halves, cannot, 1, 0.675, 0.6))) == 3  # no tolerance: A stays split
    clusters = merge(unit, halves, cannot, 1, 0.675, 0.6, cannot_tolerance=0.2)  # 1 pair ≤ 0.2 × 10
    assert len(set(clusters)) == 2 and len(set(clusters[:20])) == 1 and len(set(clusters[20:])) == 1
    assert len(set(merge(unit, halves, cannot, 1, 0.675, 0.6, cannot_tolerance=0.05))) == 3  # 1 pair > 0.05 × 10


def test_a_few_stray_embeddings_are_not_a_speaker() -> None:
    rng = np.random.default_rng(3)
    stray = np.linalg.qr(rng.normal(size=(256, 4)))[0].T[3]  # a fourth direction, 3 embeddings only
    embeddings = np.concatenate([voices(rng, 2), stray + 0.04 * rng.normal(size=(3, 256))])
    clusters = clustering().cluster_windows(embeddings, np.arange(len(embeddings)), 1, 8)
    assert len(set(clusters)) == 2


def test_speaker_bounds_are_kept() -> None:
    rng = np.random.default_rng(4)
    embeddings = voices(rng, 3)
    chunks = np.arange(len(embeddings))
    assert len(set(clustering().cluster_windows(embeddings, chunks, 1, 2))) == 2  # max_speakers
    assert len(set(clustering().cluster_windows(embeddings, chunks, 4, 8))) == 4  # min_speakers
    assert len(set(clustering().cluster_windows(embeddings, chunks, 3, 3))) == 3  # num_speakers
    three_per_window = np.repeat(np.arange(20), 3)  # the segmentation saw three speakers in every window
    assert len(set(clustering().cluster_windows(embeddings, three_per_window, 2, 2))) == 2  # the bound wins


def test_windows_without_clean_speech_give_one_speaker_without_error() -> None:
    from pyannote.core import SlidingWindow, SlidingWindowFeature

    embeddings = np.full((4, 3, 256), np.nan)  # no local speaker had enough speech for an embedding
    segmentations = SlidingWindowFeature(np.zeros((4, 293, 3)), SlidingWindow(duration=5.0, step=1.0))
    hard, _, centroids = clustering()(embeddings, segmentations, min_clusters=1, max_clusters=np.inf)
    assert hard.shape == (4, 3) and (hard == 0).all() and centroids.shape == (1, 256)


def _long_video_voices() -> tuple[np.ndarray, np.ndarray]:
    """3000 embeddings (≈ 40 min of windows) of three orthogonal voices interleaved over the timeline."""
    rng = np.random.default_rng(1)
    centres = np.linalg.qr(rng.normal(size=(256, 3)))[0].T  # three orthogonal unit voices
    truth = rng.integers(0, 3, size=3000)  # who speaks in each window
    return centres[truth] + 0.04 * rng.normal(size=(3000, 256)), truth


def _sizes_clustered(monkeypatch: pytest.MonkeyPatch, cls: type) -> list[int]:
    """The number of embeddings each ``cls.cluster_unit`` call is given, as the calls happen."""
    seen: list[int] = []
    real_cluster_unit = cls.cluster_unit

    def spy(self, unit, *args):  # type: ignore[no-untyped-def]
        seen.append(len(unit))
        return real_cluster_unit(self, unit, *args)

    monkeypatch.setattr(cls, "cluster_unit", spy)
    return seen


def _assert_every_voice_is_one_cluster(clusters: np.ndarray, truth: np.ndarray) -> None:
    assert len(clusters) == 3000
    assert all(len(set(clusters[truth == k])) == 1 for k in range(3)) and len(set(clusters)) == 3


def test_long_videos_cluster_a_sample_and_assign_every_embedding(monkeypatch: pytest.MonkeyPatch) -> None:
    import affectflow.tasks.speech.clustering
    from affectflow.tasks.speech.clustering import ConstrainedClustering

    embeddings, truth = _long_video_voices()
    seen = _sizes_clustered(monkeypatch, ConstrainedClustering)
    clusters = clustering().cluster_windows(embeddings, np.arange(3000), 1, 8)
    assert (
        seen == [1500] and affectflow.tasks.speech.clustering.MAX_CLUSTERED == 1500
    )  # the n × n similarities stay bounded
    _assert_every_voice_is_one_cluster(clusters, truth)


def test_eigengap_on_long_videos_clusters_a_sample_and_assigns_every_embedding(monkeypatch: pytest.MonkeyPatch) -> None:
    import affectflow.tasks.speech.clustering
    from affectflow.tasks.speech.clustering import EigengapClustering

    embeddings, truth = _long_video_voices()
    seen = _sizes_clustered(monkeypatch, EigengapClustering)
    clusters = EigengapClustering(0.35, 0.5, 8).cluster(embeddings, min_clusters=1, max_clusters=8)
    assert (
        seen == [1500] and affectflow.tasks.speech.clustering.MAX_CLUSTERED == 1500
    )  # the n × n affinity stays bounded
    _assert_every_voice_is_one_cluster(clusters, truth)


def test_quiet_stretches_are_cut_out_of_turns() -> None:
    from affectflow.tasks.speech.diarize import quiet_regions, without_quiet

    audio = np.concatenate([0.1 * np.ones(16000), np.zeros(8000), 0.1 * np.ones(16000), np.zeros(800)])
    quiet = quiet_regions(audio.astype(np.float32))  # 1 s loud, 0.5 s silent, 1 s loud, 0.05 s silent
    assert quiet == [pytest.approx((1.0, 1.5))]  # the 50 ms at the end is too short to count
    assert without_quiet(0.0, 3.0, quiet) == [(0.0, pytest.approx(1.0)), (pytest.approx(1.5), 3.0)]
    assert without_quiet(1.1, 1.4, quiet) == []


def test_speaker_turns_become_whisper_chunks_that_cover_all_speech() -> None:
    turns = [
        SpeakerTurn("A", 0.05, 4.0),
        SpeakerTurn("B", 3.8, 9.0),  # overlaps A: one region
        SpeakerTurn("A", 20.0, 28.0),
        SpeakerTurn("B", 40.0, 111.0),  # longer than a chunk: cut evenly
        SpeakerTurn("A", 119.5, 119.99),  # padding stops at the end of the audio
    ]
    chunks = chunks_of_turns(turns, duration_s=120.0)
    assert all(0 < c["end"] - c["start"] <= CHUNK_S + 1e-9 for c in chunks)
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(chunks))
    assert chunks[0] == {"start": 0.0, "end": 28.0 + TURN_PAD_S}  # A, B and A again fit one 30 s window
    long_turn = [c for c in chunks if 40.0 - TURN_PAD_S <= c["start"] < 111.0]
    assert len(long_turn) == 3 and long_turn[-1]["end"] == pytest.approx(111.0 + TURN_PAD_S)
    assert chunks[-1] == {"start": 119.5 - TURN_PAD_S, "end": 120.0}
    for turn in turns:  # every moment of speech is inside some chunk
        for t in np.linspace(turn.start, turn.end, 25):
            assert any(c["start"] <= t <= c["end"] for c in chunks)


def test_no_turns_means_no_chunks() -> None:
    assert chunks_of_turns([], duration_s=60.0) == []


def test_silent_masked_speech_gives_no_embedding_instead_of_an_error() -> None:
    import torch

    from affectflow.tasks.speech.clustering import ResemblyzerEmbedding

    waveforms = torch.zeros(2, 1, 5 * 16000)  # two 5 s windows of digital silence ...
    waveforms[1, 0, :16000] = 0.1 * torch.randn(16000)  # ... the second with 1 s of noise first
    weights = torch.zeros(2, 293)
    weights[:, 100:] = 1.0  # the mask selects the silent part of both
    weights[1, :60] = 1.0  # and the noisy start of the second
    embeddings = ResemblyzerEmbedding()(waveforms, weights)
    assert torch.isnan(embeddings[0]).all() and torch.isfinite(embeddings[1]).all()


def test_eigengap_clustering_counts_well_separated_voices() -> None:
    from affectflow.tasks.speech.clustering import EigengapClustering

    rng = np.random.default_rng(0)
    for true_k in (1, 2, 3):
        centres = np.linalg.qr(rng.normal(size=(256, 3)))[0].T[:true_k]  # orthogonal unit voices
        embeddings = np.concatenate([c + 0.04 * rng.normal(size=(20, 256)) for c in centres])
        clusters = EigengapClustering(0.35, 0.5, 8).cluster(embeddings, min_clusters=1, max_clusters=8)
        assert len(set(clusters)) == true_k
        assert all(len(set(clusters[i * 20 : (i + 1) * 20])) == 1 for i in range(true_k))
