"""Exports read back with each format's own library (tasks/exports, `affectflow export`).

The output root is written by the real store (tests/tablegen.py): a realistic dialogue and a
video whose transcript holds what breaks formats — commas, quotes, a newline, ``-->``, ``<``, ``&``.
"""

from __future__ import annotations

import html
import itertools
import json
from pathlib import Path

import pandas as pd
import pytest

from affectflow.tasks.exports import FORMATS, ExportError, export_videos
from affectflow.tasks.storage.store import Store
from tests.tablegen import write_video

pytestmark = pytest.mark.unit

TRICKY = ["Well,", 'he said "no",', "then\nleft", "-->", "<b>bold</b>", "&", "fin."]
REPLY = ["Yes,", "really."]  # another speaker in the same transcription segment, 0.2 s later


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("out")
    store = Store(str(root))
    write_video(store, "dialogue0000000a", duration_s=40.0, seed=3)
    words = [
        dict(word=w, start=1.0 + 0.5 * i, end=1.4 + 0.5 * i, score=0.9, speaker="SPEAKER_00", segment=0)
        for i, w in enumerate(TRICKY)
    ] + [
        dict(word=w, start=4.6 + 0.5 * i, end=5.0 + 0.5 * i, score=0.9, speaker="SPEAKER_01", segment=0)
        for i, w in enumerate(REPLY)
    ]
    write_video(store, "tricky000000000b", duration_s=20.0, seed=4, words=words)
    return str(root)


@pytest.fixture(scope="module")
def files(out: str, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    to = tmp_path_factory.mktemp("exports")
    written = export_videos(out, to, list(FORMATS))
    assert len(written) == 2 * len(FORMATS) and all(path.is_file() for path in written)
    assert sorted(p.name for p in to.iterdir()) == sorted(p.name for p in written)  # no temporary file left
    return {
        (path.name.split(".")[1], fmt): path
        for path in written
        for fmt in FORMATS
        if path.name.endswith(FORMATS[fmt][0])
    }


def _table(out: str, sql: str) -> pd.DataFrame:
    from affectflow.tasks.query.views import connect

    return connect(out).execute(sql).df()


def test_the_format_list_of_the_cli_is_the_exporters():
    from affectflow.flows.cli_export import FORMAT_NAMES

    assert tuple(FORMATS) == FORMAT_NAMES


def test_rttm_loads_back_in_pyannote_with_the_same_turns(out: str, files: dict) -> None:
    from pyannote.database.util import load_rttm

    (annotation,) = load_rttm(files["dialogue0000000a", "rttm"]).values()
    got = sorted((label, round(seg.start, 3), round(seg.end, 3)) for seg, _, label in annotation.itertracks(True))
    turns = _table(out, "SELECT speaker, start, \"end\" FROM speaker_turns WHERE video_id = 'dialogue0000000a'")
    want = sorted((r.speaker, round(r.start, 3), round(r["end"], 3)) for _, r in turns.iterrows())
    assert got == want and len(got) > 5


def test_srt_and_vtt_keep_the_tricky_transcript_and_its_speaker(files: dict) -> None:
    import srt
    import webvtt

    cue, reply = srt.parse(files["tricky000000000b", "srt"].read_text())
    assert cue.content == "SPEAKER_00: " + " ".join(TRICKY) and reply.content == "SPEAKER_01: " + " ".join(REPLY)
    assert abs(cue.start.total_seconds() - 1.0) < 1e-3 and abs(cue.end.total_seconds() - 4.4) < 1e-3
    caption, _ = webvtt.read(str(files["tricky000000000b", "vtt"]))
    assert caption.voice == "SPEAKER_00" and html.unescape(caption.text) == " ".join(TRICKY)
    assert "-->" not in caption.raw_text and "<b>" not in caption.raw_text  # escaped, as WebVTT requires


def test_subtitles_of_a_dialogue_follow_the_words_and_change_cue_with_the_speaker(out: str, files: dict) -> None:
    import srt

    words = _table(out, "SELECT word, speaker FROM words WHERE video_id = 'dialogue0000000a' ORDER BY start")
    subtitles = list(srt.parse(files["dialogue0000000a", "srt"].read_text()))
    spoken = [(s.content.split(": ", 1)[0], w) for s in subtitles for w in s.content.split(": ", 1)[1].split(" ")]
    assert spoken == list(zip(words.speaker, words.word, strict=True))
    assert all(a.end <= b.start or a.start <= b.start for a, b in itertools.pairwise(subtitles))
    assert all((s.end - s.start).total_seconds() <= 7.5 for s in subtitles)


def test_elan_has_utterance_word_and_emotion_tiers_that_read_back(out: str, files: dict) -> None:
    from pympi.Elan import Eaf

    eaf = Eaf(str(files["tricky000000000b", "eaf"]))
    ((start, end, text),) = eaf.get_annotation_data_for_tier("SPEAKER_00")
    assert (start, end, text) == (1000, 4400, " ".join(TRICKY))
    assert [a[2] for a in sorted(eaf.get_annotation_data_for_tier("SPEAKER_00 words"))] == TRICKY
    assert eaf.get_parameters_for_tier("SPEAKER_00 words")["PARENT_REF"] == "SPEAKER_00"
    emotions = _table(out, "SELECT t, valence FROM emotions WHERE video_id = 'tricky000000000b' AND track_id = 0")
    valence = sorted(eaf.get_annotation_data_for_tier("face 0 valence"))
    first_second = emotions[emotions.t < 1.0].valence.mean()
    assert valence[0][:2] == (0, 1000) and abs(float(valence[0][2]) - first_second) < 1e-3
    assert len(valence) == emotions.t.floordiv(1.0).nunique()


def test_textgrid_has_turn_and_word_tiers_per_speaker(out: str, files: dict) -> None:
    from praatio import textgrid

    grid = textgrid.openTextgrid(str(files["tricky000000000b", "textgrid"]), includeEmptyIntervals=False)
    assert [e.label for e in grid.getTier("SPEAKER_00 words").entries] == TRICKY
    grid = textgrid.openTextgrid(str(files["dialogue0000000a", "textgrid"]), includeEmptyIntervals=False)
    turns = _table(
        out, "SELECT speaker, count(*) AS n FROM speaker_turns WHERE video_id = 'dialogue0000000a' GROUP BY 1"
    )
    for speaker, n in zip(turns.speaker, turns.n, strict=True):
        assert len(grid.getTier(speaker).entries) == n


def test_csv_is_the_emotions_table_with_lf_endings(out: str, files: dict) -> None:
    path = files["dialogue0000000a", "csv"]
    assert b"\r" not in path.read_bytes()
    got = pd.read_csv(path)
    want = _table(out, "SELECT * FROM emotions WHERE video_id = 'dialogue0000000a' ORDER BY track_id, t")
    assert len(got) == len(want) > 100 and (got.video_id == "dialogue0000000a").all()
    assert (got.valence - want.valence).abs().max() < 1e-5 and (got.arousal - want.arousal).abs().max() < 1e-5
    assert got.speaking.tolist() == want.speaking.tolist()


def test_json_has_whisperx_segments_words_and_each_tracks_series(out: str, files: dict) -> None:
    document = json.loads(files["tricky000000000b", "json"].read_text())
    segment, reply = document["segments"]
    assert segment["text"] == " ".join(TRICKY) and segment["speaker"] == "SPEAKER_00"
    assert (reply["text"], reply["speaker"]) == (" ".join(REPLY), "SPEAKER_01")
    assert [w["word"] for w in segment["words"]] == TRICKY
    assert [w["word"] for w in document["word_segments"]] == TRICKY + REPLY
    document = json.loads(files["dialogue0000000a", "json"].read_text())
    emotions = _table(
        out, "SELECT track_id, count(*) AS n FROM emotions WHERE video_id = 'dialogue0000000a' GROUP BY 1"
    )
    series = {t["track_id"]: t for t in document["emotions"][0]["tracks"]}
    assert {k: len(v["t"]) for k, v in series.items()} == dict(zip(emotions.track_id, emotions.n, strict=True))
    assert document["video"]["video_id"] == "dialogue0000000a" and isinstance(document["video"]["backends"], dict)


def test_bad_requests_fail_in_one_line_before_anything_is_written(out: str, tmp_path: Path) -> None:
    to = tmp_path / "to"
    with pytest.raises(ExportError, match="no video nosuchvideo in this output root") as err:
        export_videos(out, to, ["srt"], ["nosuchvideo"])
    assert err.value.usage
    with pytest.raises(ExportError, match="unknown format docx"):
        export_videos(out, to, ["srt", "docx"])
    assert not to.exists()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cannot write to") as err:
        export_videos(out, blocker, ["srt"])
    assert not err.value.usage


def test_a_writer_that_fails_midway_leaves_no_file(out: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import affectflow.tasks.exports.export as export

    def broken(results, path):  # type: ignore[no-untyped-def]
        path.write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "write_textgrid", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_videos(out, tmp_path, ["srt", "textgrid"])
    assert list(tmp_path.iterdir()) == []  # neither the half file nor the finished srt of the first video


def test_cli_exit_codes_and_one_line_errors(out: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from affectflow.flows.cli import main

    assert (
        main(
            [
                "export",
                "--out",
                out,
                "--to",
                str(tmp_path / "ok"),
                "--format",
                "srt,rttm",
                "--video",
                "tricky000000000b",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in printed) == [
        "tricky000000000b.tricky000000000b.rttm",
        "tricky000000000b.tricky000000000b.srt",
    ]
    assert main(["export", "--out", out, "--to", str(tmp_path / "x"), "--format", "srt", "--video", "nope"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--out", out, "--to", str(tmp_path / "x"), "--format", "docx"])
    assert exit_.value.code == 2 and not (tmp_path / "x").exists()


def test_csv_and_json_carry_the_corpus_person_of_each_track_and_voice(tmp_path: Path) -> None:
    from affectflow.tasks.storage.store import write_file
    from affectflow.tasks.storage.tables import to_table

    out = str(tmp_path / "out")
    write_video(Store(out), "people0000000000", duration_s=20.0, seed=5)
    tracks = _table(out, "SELECT track_id, speaker FROM tracks ORDER BY track_id")
    person = {int(t): f"P{int(t) + 7:06d}" for t in tracks.track_id}
    rows = [dict(video_id="people0000000000", track_id=int(t), speaker=s, person_id=person[int(t)], evidence="face")
            for t, s in zip(tracks.track_id, tracks.speaker, strict=True)]  # fmt: skip
    link = f"{out}/{{}}/link_id=L000001/part-0.parquet"
    write_file(link.format("person_tracks"), to_table("person_tracks", rows).drop_columns(["link_id"]))
    people = to_table("people", [dict(person_id=p) for p in person.values()]).drop_columns(["link_id"])
    write_file(link.format("people"), people)

    to = tmp_path / "exports"
    csv_path, json_path = export_videos(out, to, ["csv", "json"])
    got = pd.read_csv(csv_path)
    assert len(got) > 0 and (got.person_id == got.track_id.map(person)).all()
    document = json.loads(json_path.read_text())
    assert {t["track_id"]: t["person_id"] for t in document["emotions"][0]["tracks"]} == person
    assert {t["track_id"]: t["person_id"] for t in document["tracks"]} == person
    voiced = {s: person[int(t)] for t, s in zip(tracks.track_id, tracks.speaker, strict=True) if isinstance(s, str)}
    assert voiced and all(turn["person_id"] == voiced.get(turn["speaker"]) for turn in document["speaker_turns"])
