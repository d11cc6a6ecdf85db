"""`affectflow export` (results as CSV, JSON, SRT/VTT, RTTM, ELAN or TextGrid files) and `affectflow report`.

The exporters (tasks/exports) and the report pages (tasks/reports) are imported when the
command runs: `affectflow --help` reads only ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import sys

COMMANDS = {
    "export": "write videos' results as CSV, JSON, SRT/VTT, RTTM, ELAN (.eaf) or Praat TextGrid files",
    "report": "write the interactive HTML report of each video and the corpus index under OUT/reports/",
}
FORMAT_NAMES = ("csv", "json", "srt", "vtt", "rttm", "eaf", "textgrid")  # tasks/exports FORMATS, without importing it


def add_commands(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export",
        help=COMMANDS["export"],
        description=(
            "Write each video's results under OUT in the formats people already use: csv (emotions per face "
            "track and frame), json (whisperx-style segments and words with speakers, plus tracks and the "
            "emotion series), srt and vtt (utterances with speakers), rttm (the diarization), eaf (ELAN tiers) "
            "and textgrid (Praat tiers). Files are named NAME.VIDEO_ID.EXT; nothing is written unless every "
            "file of the export could be."
        ),
    )
    export.add_argument("--out", required=True, help="output root of a run (local dir or s3://bucket/prefix)")
    export.add_argument("--to", required=True, help="folder to write the files into (created if missing)")
    export.add_argument(
        "--format",
        required=True,
        type=format_list,
        help=f"comma-separated: {','.join(FORMAT_NAMES)}, or all",
    )
    export.add_argument(
        "--video", action="append", default=[], metavar="VIDEO_ID", help="a video to export (repeat; default: all ok)"
    )
    export.add_argument("--word-cues", action="store_true", help="srt/vtt: one cue per word instead of per utterance")
    export.set_defaults(func=cmd_export)
    _add_report(commands)


def _add_report(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report",
        help=COMMANDS["report"],
        description=(
            "Write OUT/reports/VIDEO_ID.html for each video (the video with each face's valence/arousal under "
            "it, a cursor that follows playback, click to seek, who speaks when, the transcript, face "
            "thumbnails, the backends) and OUT/reports/index.html (every video, sortable and filterable). "
            "Static pages with everything inlined: they open offline, from a local folder or from S3/HTTP."
        ),
    )
    report.add_argument("--out", required=True, help="output root of a run (local dir or s3://bucket/prefix)")
    report.add_argument(
        "--video", action="append", default=[], metavar="VIDEO_ID", help="a video to report (repeat; default: all ok)"
    )
    report.set_defaults(func=cmd_report)


def format_list(text: str) -> list[str]:
    """``srt,eaf`` → the formats (``all``: every one), refusing unknown ones; an argparse type."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if names == ["all"]:
        return list(FORMAT_NAMES)
    unknown = [name for name in names if name not in FORMAT_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMAT_NAMES)} or all"
        )
    return list(dict.fromkeys(names))


def cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from affectflow.flows.cli_query import require_output_root
    from affectflow.flows.parameters import UsageError
    from affectflow.tasks.exports import ExportError, export_videos

    require_output_root(args.out)
    try:
        files = export_videos(
            args.out,
            Path(args.to),
            args.format,
            args.video,
            word_cues=args.word_cues,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except ExportError as err:
        if err.usage:
            raise UsageError(str(err)) from None
        raise
    for path in files:
        print(path)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from affectflow.flows.cli_query import require_output_root
    from affectflow.flows.parameters import UsageError
    from affectflow.tasks.reports import ReportError, write_reports

    require_output_root(args.out)
    try:
        pages = write_reports(
            args.out, args.video or None, progress=lambda line: print(line, file=sys.stderr, flush=True)
        )
    except ReportError as err:
        raise UsageError(str(err)) from None
    print(pages.pop("index"))
    for url in pages.values():
        print(url)
    return 0
