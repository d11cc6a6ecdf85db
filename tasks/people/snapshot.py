"""The people step's store adapter: read what linking needs, write one link's snapshot.

Read through the views (``sql/views.sql``): committed videos' ``identities`` and ``tracks``
(the face ↔ voice links), and the newest committed link (``person_tracks``,
``person_decisions``, ``people``). Write a new snapshot ``<table>/link_id=<id>/part-0.parquet``
for each of ``PEOPLE_TABLES``, ``people`` last (the commit: the views read only the newest
``people`` link and what belongs to it), then remove older snapshots. Each file goes through
the store's atomic writer; nothing is written when no video has identities (``--no-identity``).
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from affectflow.tasks.people.config import LinkConfig
from affectflow.tasks.people.link import (
    GALLERY,
    ISSUED,
    Assignment,
    Decision,
    Unit,
    UnitKey,
    link,
    person_name,
    person_number,
)
from affectflow.tasks.query.views import connect
from affectflow.tasks.storage.fs import glob_escape, is_local, url_to_fs
from affectflow.tasks.storage.store import write_file
from affectflow.tasks.storage.tables import PEOPLE_TABLES, to_table

LINK_PARTITION = "link_id"


@dataclass
class Corpus:
    """Everything one link reads from the output root."""

    units: list[Unit]  # in corpus order
    started: dict[str, datetime | None]  # video_id -> its run's start (first_seen / last_seen)
    previous: dict[UnitKey, Assignment]
    decisions: list[Decision]
    names: dict[str, str]  # person_id -> name
    link_id: str | None  # the newest committed link
    first_free: int  # lowest person number never used


def read_corpus(out: str) -> Corpus:
    con = connect(out)
    started = dict(con.execute("SELECT video_id, started FROM videos WHERE status = 'ok'").fetchall())
    identities = con.execute(
        "SELECT i.video_id, kind, track_id, speaker, model, vector FROM identities AS i"
        " JOIN videos AS v USING (video_id) WHERE v.status = 'ok'"
        " ORDER BY v.started NULLS LAST, i.video_id, kind, track_id, speaker"
    ).fetchall()
    tracks = con.execute("SELECT video_id, track_id, speaker, first_t, last_t FROM tracks").fetchall()
    link_id = con.execute("SELECT max(link_id) FROM people").fetchone()[0]  # type: ignore[index]
    previous = {
        UnitKey(v, t, s): Assignment(p, sim, e)
        for v, t, s, p, sim, e in con.execute(
            "SELECT video_id, track_id, speaker, person_id, similarity, evidence FROM person_tracks"
        ).fetchall()
    }
    rows = con.execute(
        "SELECT action, person_id, other, video_id, track_id, speaker FROM person_decisions ORDER BY seq"
    ).fetchall()
    decisions = [Decision(a, p, o, UnitKey(v, t, s) if v is not None else None) for a, p, o, v, t, s in rows]
    used = con.execute(
        "SELECT max(n) FROM (SELECT max(person_id) AS n FROM people UNION ALL SELECT max(person_id) FROM"
        " person_decisions UNION ALL SELECT max(other) FROM person_decisions WHERE action = 'merge')"
    ).fetchone()[0]  # type: ignore[index]
    return Corpus(
        units=build_units(identities, tracks),
        started=started,
        previous=previous,
        decisions=decisions,
        names={d.person_id: str(d.other) for d in decisions if d.action == "name"},
        link_id=link_id,
        first_free=person_number(used) + 1 if used else 1,
    )


def build_units(identities: list[tuple], tracks: list[tuple]) -> list[Unit]:
    """Face tracks carry their own voice (``tracks.speaker``); voices with no face become units of their own."""
    link_of = {(v, t): (s, a, b) for v, t, s, a, b in tracks}  # (video, track) -> (speaker, first_t, last_t)
    voices: dict[tuple[str, str], tuple[str, np.ndarray]] = {}
    faces: dict[str, list[tuple[int, str, np.ndarray]]] = defaultdict(list)
    order: list[str] = []
    for video, kind, track, speaker, model, vector in identities:
        if not order or order[-1] != video:
            order.append(video)
        if kind == "voice":
            voices[(video, speaker)] = (model, np.asarray(vector, np.float32))
        else:
            faces[video].append((track, model, np.asarray(vector, np.float32)))
    units = []
    for video in order:
        linked = set()
        for track, model, vector in faces[video]:
            speaker, first_t, last_t = link_of.get((video, track), (None, None, None))
            unit = Unit(UnitKey(video, track, speaker), first_t, last_t, {"face": (model, vector)})
            if speaker is not None and (video, speaker) in voices:
                unit.vectors["voice"] = voices[(video, speaker)]
                linked.add(speaker)
            units.append(unit)
        for (v, speaker), voice in sorted(voices.items()):
            if v == video and speaker not in linked:
                units.append(Unit(UnitKey(video, None, speaker), vectors={"voice": voice}))
    return units


def relink(
    out: str, config: LinkConfig, new_decisions: list[Decision] | None = None, gallery: dict[str, Unit] | None = None
) -> dict[str, Any]:
    """Link the corpus (keeping every existing id), add ``new_decisions``, write the snapshot; a summary.

    ``gallery``: known people by name (tasks/people/gallery.py); each is the person already given
    that name, or a new person named so, and corpus tracks that match them join them.
    """
    corpus = read_corpus(out)
    if not corpus.units:
        return {"link_id": None, "people": 0, "units": 0, "new_units": 0, "note": "no identities (--no-identity?)"}
    check_gallery_models(gallery or {}, corpus.units, out)
    decisions = corpus.decisions + list(new_decisions or [])
    names = {d.person_id: str(d.other) for d in decisions if d.action == "name"}
    known, first_free = known_people(gallery or {}, names, decisions, corpus.first_free)
    previous = {**corpus.previous, **known}
    units = [*(gallery or {}).values(), *corpus.units]
    linked = link(units, previous, config, decisions, first_free)
    assignments = {k: a for k, a in linked.items() if not k.video_id.startswith(GALLERY)}
    decisions = with_issued(decisions, max([first_free - 1, *(person_number(a.person_id) for a in linked.values())]))
    link_id = next_link_id(corpus.link_id)
    names = {d.person_id: str(d.other) for d in decisions if d.action == "name"}
    write_snapshot(out, link_id, corpus, assignments, decisions, names, config)
    return {
        "link_id": link_id,
        "people": len({a.person_id for a in assignments.values()}),
        "units": len(assignments),
        "new_units": len(set(assignments) - set(corpus.previous)),
        "named": sorted({names[a.person_id] for a in assignments.values() if a.person_id in names}),
    }


KINDS = ("face", "voice")


def check_gallery_models(gallery: dict[str, Unit], units: list[Unit], out: str) -> None:
    """Refuse a gallery embedded by other models than the corpus's tracks: it could never name anyone.

    Vectors of different models are never compared (link.py), so a gallery made with the default
    faces backend beside tracks of ``--faces-backend insightface`` would silently name no one.
    """
    for kind in KINDS:
        made, tracks = _models(gallery.values(), kind), _models(units, kind)
        if made and tracks and not made & tracks:
            option = "--faces-backend" if kind == "face" else "--diarizer"
            raise ValueError(
                f"the gallery's {kind} embeddings ({', '.join(sorted(made))}) match no track of {out}"
                f" ({', '.join(sorted(tracks))}): give `people link` the {option} its runs used"
            )


def _models(units: Iterable[Unit], kind: str) -> set[str]:
    return {unit.vectors[kind][0] for unit in units if kind in unit.vectors}


def known_people(
    gallery: dict[str, Unit], names: dict[str, str], decisions: list[Decision], first_free: int
) -> tuple[dict[UnitKey, Assignment], int]:
    """Each gallery unit's person: the one with its name, or a new one (a ``name`` decision is added)."""
    by_name = {name: person for person, name in names.items()}
    used = [person_number(p) for p in names] + [first_free - 1]
    number = max(used) + 1
    known = {}
    for name, unit in sorted(gallery.items()):
        if name not in by_name:
            by_name[name] = person_name(number)
            decisions.append(Decision("name", by_name[name], name))
            number += 1
        known[unit.key] = Assignment(by_name[name], None, "manual")
    return known, number


def with_issued(decisions: list[Decision], highest: int) -> list[Decision]:
    """``decisions`` with one ``issued`` record of the highest person number given so far (0: none yet).

    ``read_corpus`` takes the next number from the newest snapshot's ids; without this record a
    person whose every video was removed would leave no id behind, and their number would come back.
    """
    kept = [d for d in decisions if d.action != ISSUED]
    return [*kept, Decision(ISSUED, person_name(highest))] if highest else kept


def next_link_id(link_id: str | None) -> str:
    return f"L{(int(link_id[1:]) + 1 if link_id else 1):06d}"


def write_snapshot(
    out: str,
    link_id: str,
    corpus: Corpus,
    assignments: dict[UnitKey, Assignment],
    decisions: list[Decision],
    names: dict[str, str],
    config: LinkConfig,
) -> None:
    made = datetime.now(UTC)
    tables = {
        "person_tracks": to_table(
            "person_tracks",
            [dict(video_id=k.video_id, track_id=k.track_id, speaker=k.speaker, person_id=a.person_id,
                  similarity=a.similarity, evidence=a.evidence) for k, a in assignments.items()],
        ),
        "person_decisions": to_table(
            "person_decisions",
            [dict(seq=i, action=d.action, person_id=d.person_id, other=d.other, made=made,
                  video_id=d.key.video_id if d.key else None, track_id=d.key.track_id if d.key else None,
                  speaker=d.key.speaker if d.key else None) for i, d in enumerate(decisions)],
        ),
        "people": people_table(corpus, assignments, names, config),
    }  # fmt: skip
    root = out.rstrip("/")
    for name in PEOPLE_TABLES:  # people last: the commit
        write_file(
            f"{root}/{name}/{LINK_PARTITION}={link_id}/part-0.parquet", tables[name].drop_columns([LINK_PARTITION])
        )
    fs, base = url_to_fs(root)
    for name in PEOPLE_TABLES:  # older snapshots: no view reads them any more
        for old in fs.glob(f"{glob_escape(base.rstrip('/'))}/{name}/{LINK_PARTITION}=*"):
            if not old.rstrip("/").endswith(f"{LINK_PARTITION}={link_id}"):
                if is_local(fs):
                    shutil.rmtree(old, ignore_errors=True)
                else:  # file by file: rm(recursive) would read `[` in the root as a glob
                    for path in fs.find(old):
                        fs.rm_file(path)


def people_table(
    corpus: Corpus, assignments: dict[UnitKey, Assignment], names: dict[str, str], config: LinkConfig
) -> pa.Table:
    models = {u.key: u.vectors for u in corpus.units}
    rows: dict[str, dict[str, Any]] = {}
    for key, a in assignments.items():
        row = rows.setdefault(a.person_id, dict(person_id=a.person_id, name=names.get(a.person_id), videos=set(),
                                                n_tracks=0, face_model=None, voice_model=None))  # fmt: skip
        row["videos"].add(key.video_id)
        row["n_tracks"] += 1
        for kind, (model, _) in models[key].items():
            row[f"{kind}_model"] = row[f"{kind}_model"] or model
    thresholds = config.to_json()
    out = []
    for person_id in sorted(rows):
        row = rows[person_id]
        videos = row.pop("videos")
        seen = [t for v in videos if (t := corpus.started.get(v)) is not None]
        out.append({**row, "n_videos": len(videos), "first_seen": min(seen, default=None),
                    "last_seen": max(seen, default=None), "thresholds": thresholds})  # fmt: skip
    return to_table("people", out)
