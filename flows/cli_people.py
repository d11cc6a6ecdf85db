"""`affectflow people link|name|merge|split`: corpus-wide people ids and their manual corrections.

Every command re-links (new videos' tracks join people, no id changes) and writes one new
snapshot of the people tables; ``name``, ``merge`` and ``split`` add a decision that is kept
and re-applied on every later link. Imports stay inside the commands (``--help`` is instant).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from typing import Any

from affectflow.tasks import faces, speech

COMMANDS = {"people": "corpus-wide person ids from face and voice: link, name, merge, split"}


def add_commands(commands: argparse._SubParsersAction) -> None:
    people = commands.add_parser("people", help=COMMANDS["people"], description=COMMANDS["people"])
    actions = people.add_subparsers(dest="people_command", required=True, metavar="COMMAND")
    link = actions.add_parser("link", help="assign the new videos' tracks and voices to people (ids never change)")
    _common(link)
    link.add_argument(
        "--known-people", metavar="DIR", help="gallery: DIR/<name>/ photos (*.jpg, *.png) and/or *.wav clips"
    )
    link.add_argument("--faces-backend", choices=faces.BACKENDS, help="embeds the gallery's photos: the runs' backend")
    link.add_argument("--diarizer", choices=speech.DIARIZERS, help="embeds the gallery's clips: the runs' diarizer")
    for name, default in _thresholds().items():
        link.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float, default=default,
                          help=f"cosine similarity threshold (default: {default}, measured: docs/people.md)")  # fmt: skip
    name = actions.add_parser("name", help='give a person a name: people name P000003 "Jane Doe"')
    _common(name)
    name.add_argument("person_id")
    name.add_argument("name")
    merge = actions.add_parser("merge", help="fold person B into person A (B's tracks become A's)")
    _common(merge)
    merge.add_argument("person_id", metavar="A")
    merge.add_argument("other", metavar="B")
    split = actions.add_parser("split", help="move one face track (or face-less voice) of a video to a new person")
    _common(split)
    split.add_argument("video_id")
    split.add_argument("--track", type=int, help="the face track id")
    split.add_argument("--speaker", help="the voice's label (a face-less voice, or with --track: that pair)")
    people.set_defaults(func=cmd_people)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output root of the corpus runs (folder or s3://bucket/prefix)")


def _thresholds() -> dict[str, float]:
    from affectflow.tasks.people.config import LinkConfig

    return {f.name: getattr(LinkConfig(), f.name) for f in fields(LinkConfig) if f.type in ("float", float)}


def cmd_people(args: argparse.Namespace) -> int:
    from affectflow.flows.people import link_people
    from affectflow.tasks.people.config import LinkConfig

    config = LinkConfig(**{k: getattr(args, k) for k in _thresholds() if hasattr(args, k)})
    decision = _decision(args)
    gallery = {k: getattr(args, k, None) for k in ("known_people", "faces_backend", "diarizer")}
    summary = link_people.fn(args.out, config, [decision] if decision else None, **gallery)
    print(json.dumps(summary, indent=2))
    return 0


def _decision(args: argparse.Namespace) -> Any:
    """The command's manual decision (checked against the current people), or None for ``link``."""
    from affectflow.tasks.people.link import Decision, UnitKey, person_name, person_number
    from affectflow.tasks.people.snapshot import read_corpus

    if args.people_command == "link":
        return None
    corpus = read_corpus(args.out)
    people = {a.person_id for a in corpus.previous.values()}
    if args.people_command == "name":
        _known(args.person_id, people)
        return Decision("name", args.person_id, args.name)
    if args.people_command == "merge":
        _known(args.person_id, people)
        _known(args.other, people)
        if args.person_id == args.other:
            raise SystemExit("affectflow people merge: A and B are the same person")
        return Decision("merge", args.person_id, args.other)
    key = UnitKey(args.video_id, args.track, args.speaker)
    matches = [k for k in corpus.previous if k.video_id == key.video_id and k.track_id == key.track_id
               and (key.speaker is None or k.speaker == key.speaker)]  # fmt: skip
    if len(matches) != 1:
        raise SystemExit(f"affectflow people split: no single track/voice {key} in the last link; see person_tracks")
    numbers = [person_number(p) for p in people] + [corpus.first_free - 1]
    return Decision("split", person_name(max(numbers) + 1), None, matches[0])


def _known(person_id: str, people: set[str]) -> None:
    if person_id not in people:
        raise SystemExit(f"affectflow people: unknown person {person_id!r}; run people link, then see the people view")
