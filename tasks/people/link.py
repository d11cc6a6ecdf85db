"""Linking: every face track and every face-less voice of the corpus gets a corpus-wide person id.

Rules (what is guaranteed):

- Incremental: a unit (face track or voice) that has a person keeps it; only units of new
  videos are assigned, videos in their order (first run, then id), units of a video in a
  fixed order. Re-linking unchanged data changes nothing; new videos never renumber anyone.
- A new unit joins the person with the best evidence: the most similar stored unit of that
  person, per modality (face, voice) of the same embedding model, at or above the modality's
  ``match`` threshold; the person is refused when, for a modality both sides have, the
  unit's similarity to the person's centroid is below ``veto`` (a matching voice never
  overrides a clearly different face), or when the person already holds a unit of the same
  video that cannot be the same individual (face tracks overlapping in time, two different
  diarized voices). No candidate: a new person, ``P`` + the next free number.
- Face and voice meet through the ``tracks`` table: a face track linked to its own voice is
  one unit carrying both vectors, so a person seen in one video and only heard in another
  is one person when the voice matches.
- Manual decisions (name, merge, split) are applied after every link, in the order made.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from affectflow.tasks.people.config import LinkConfig
from affectflow.tasks.people.index import VectorIndex

BATCH = 2048  # new units queried against the stored ones at once (and compared among themselves)
GALLERY = "gallery:"  # video_id prefix of known people's gallery units (tasks/people/gallery.py; video ids are hex)


class UnitKey(NamedTuple):
    video_id: str
    track_id: int | None  # None: a voice with no face in its video
    speaker: str | None  # None: a face with no voice of its own


@dataclass
class Unit:
    """What is assigned to one person: a face track (with its own voice) or a face-less voice."""

    key: UnitKey
    first_t: float | None = None  # s, the face track's span (None: a voice, or unknown)
    last_t: float | None = None
    vectors: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)  # kind -> (model, (dim,) unit vector)


@dataclass(frozen=True)
class Assignment:
    person_id: str
    similarity: float | None  # to the person when joined (the deciding modality); None: founded it
    evidence: str  # face | voice | both | new | manual


@dataclass(frozen=True)
class Decision:
    """A manual correction: ``name`` (person_id, other=the name), ``merge`` (other folded into person_id),
    ``split`` (the unit ``key`` moved to the new person ``person_id``); and the linker's own ``issued``
    (person_id: the highest id given so far, so no number is given twice, not even one whose person
    has no track left)."""

    action: str
    person_id: str
    other: str | None = None
    key: UnitKey | None = None


ISSUED = "issued"


def person_number(person_id: str) -> int:
    return int(person_id[1:])


def person_name(number: int) -> str:
    return f"P{number:06d}"


def can_share_person(a: Unit, b: Unit) -> bool:
    """Two units of one video may be one individual: face tracks that never overlap, no two different voices."""
    if a.key.speaker is not None and b.key.speaker is not None and a.key.speaker != b.key.speaker:
        return False
    spans = (a.first_t, a.last_t, b.first_t, b.last_t)
    if a.key.track_id is not None and b.key.track_id is not None and None not in spans:
        return bool(a.last_t < b.first_t or b.last_t < a.first_t)  # type: ignore[operator]
    return True


class _People:
    """The linking state: each unit's person, each person's units per video and their centroids."""

    def __init__(self, units: Sequence[Unit], config: LinkConfig):
        self.units = units
        self.config = config
        self.person: list[str | None] = [None] * len(units)
        self.members: dict[tuple[str, str], list[int]] = defaultdict(list)  # (person, video) -> unit rows
        self.sums: dict[tuple[str, str], dict[str, np.ndarray]] = defaultdict(dict)  # (kind, model) -> person -> sum
        self.indices: dict[tuple[str, str], VectorIndex] = {}
        self.index_rows: dict[tuple[str, str], list[int]] = defaultdict(list)  # index label -> unit row

    def assign(self, row: int, person_id: str) -> None:
        unit = self.units[row]
        self.person[row] = person_id
        self.members[(person_id, unit.key.video_id)].append(row)
        for kind, (model, vector) in unit.vectors.items():
            sums = self.sums[(kind, model)]
            sums[person_id] = sums[person_id] + vector if person_id in sums else vector.astype(np.float64)

    def index(self, rows: Sequence[int]) -> None:
        """Make these (assigned) units findable."""
        by_model: dict[tuple[str, str], list[int]] = defaultdict(list)
        for row in rows:
            for kind, (model, _) in self.units[row].vectors.items():
                by_model[(kind, model)].append(row)
        for mkey, members in by_model.items():
            vectors = np.stack([self.units[r].vectors[mkey[0]][1] for r in members])
            if mkey not in self.indices:
                self.indices[mkey] = VectorIndex(vectors.shape[1])
            labels = np.arange(len(self.index_rows[mkey]), len(self.index_rows[mkey]) + len(members))
            self.indices[mkey].add(vectors, labels)
            self.index_rows[mkey].extend(members)

    def centroid_similarity(self, mkey: tuple[str, str], person_id: str, vector: np.ndarray) -> float | None:
        total = self.sums[mkey].get(person_id)
        if total is None:
            return None
        return float(vector @ total / max(float(np.linalg.norm(total)), 1e-12))

    def allowed(self, row: int, person_id: str) -> bool:
        unit = self.units[row]
        return all(can_share_person(unit, self.units[o]) for o in self.members.get((person_id, unit.key.video_id), []))


def link(
    units: Sequence[Unit],
    previous: dict[UnitKey, Assignment],
    config: LinkConfig,
    decisions: Iterable[Decision] = (),
    first_free: int = 1,
) -> dict[UnitKey, Assignment]:
    """Each unit's person. ``units`` in corpus order (videos in order, a video's units together).

    ``previous``: the last link's assignments (kept); ``first_free``: the lowest person number
    never used (ids are never reused, not even after a merge or a removed video).
    """
    people = _People(units, config)
    known = [row for row, unit in enumerate(units) if unit.key in previous]
    for row in known:
        people.assign(row, previous[units[row].key].person_id)
    people.index(known)
    result = {units[row].key: previous[units[row].key] for row in known}
    numbers = [person_number(a.person_id) for a in previous.values()]
    next_number = max([first_free - 1, *numbers]) + 1
    new = [row for row, unit in enumerate(units) if unit.key not in previous]
    for start in range(0, len(new), BATCH):
        batch = new[start : start + BATCH]
        candidates = _candidates(people, batch)
        earlier = _batch_pairs(people, batch)
        for position, row in enumerate(batch):
            for mkey, q, sim in earlier[position]:  # the batch's earlier units are candidates too (not indexed yet)
                best = candidates[position][mkey]
                person = people.person[batch[q]]
                assert person is not None
                best[person] = max(best.get(person, -np.inf), sim)
            choice = _choose(people, row, candidates[position])
            if choice is None:
                choice = Assignment(person_name(next_number), None, "new")
                next_number += 1
            people.assign(row, choice.person_id)
            result[units[row].key] = choice
        people.index(batch)
    return apply_decisions(result, decisions)


# candidates: per unit row, per modality key, person -> best similarity among its units
Candidates = dict[tuple[str, str], dict[str, float]]


def _candidates(people: _People, batch: Sequence[int]) -> list[Candidates]:
    """Best similarity per person per modality from the stored units' nearest neighbours (one query per model)."""
    found: list[Candidates] = [defaultdict(dict) for _ in batch]
    by_model: dict[tuple[str, str], list[int]] = defaultdict(list)
    for position, row in enumerate(batch):
        for kind, (model, _) in people.units[row].vectors.items():
            by_model[(kind, model)].append(position)
    for mkey, positions in by_model.items():
        index = people.indices.get(mkey)
        if index is None or not len(index):
            continue
        queries = np.stack([people.units[batch[p]].vectors[mkey[0]][1] for p in positions])
        sims, labels = index.search(queries, people.config.neighbours)  # (q, k) each
        for p, row_sims, row_labels in zip(positions, sims, labels, strict=True):
            best = found[p][mkey]
            for sim, label in zip(row_sims, row_labels, strict=True):
                if label >= 0:
                    person = people.person[people.index_rows[mkey][label]]
                    assert person is not None
                    best[person] = max(best.get(person, -np.inf), float(sim))
    return found


def _batch_pairs(people: _People, batch: Sequence[int]) -> list[list[tuple[tuple[str, str], int, float]]]:
    """Per position: the earlier positions of the batch at or above the modality's match threshold."""
    pairs: list[list[tuple[tuple[str, str], int, float]]] = [[] for _ in batch]
    by_model: dict[tuple[str, str], list[int]] = defaultdict(list)
    for position, row in enumerate(batch):
        for kind, (model, _) in people.units[row].vectors.items():
            by_model[(kind, model)].append(position)
    for mkey, positions in by_model.items():
        vectors = np.stack([people.units[batch[p]].vectors[mkey[0]][1] for p in positions])  # (n, dim)
        sims = vectors @ vectors.T  # (n, n)
        later, first = np.nonzero(np.tril(sims >= getattr(people.config, f"{mkey[0]}_match"), -1))
        for a, b in zip(later, first, strict=True):
            pairs[positions[a]].append((mkey, positions[b], float(sims[a, b])))
    return pairs


def _choose(people: _People, row: int, candidates: Candidates) -> Assignment | None:
    """The best allowed person for a unit, or None (see the module docstring)."""
    unit = people.units[row]
    config = people.config
    best: tuple[float, str, Assignment] | None = None
    persons = sorted(
        {p for (kind, _), by_person in candidates.items() for p, sim in by_person.items()
         if sim >= getattr(config, f"{kind}_match")}
    )  # fmt: skip
    for person in persons:
        passed: dict[str, float] = {}
        vetoed = False
        for kind, (model, vector) in unit.vectors.items():
            match, veto = getattr(config, f"{kind}_match"), getattr(config, f"{kind}_veto")
            sim = candidates.get((kind, model), {}).get(person)
            if sim is not None and sim >= match:
                passed[kind] = sim - match
            centroid = people.centroid_similarity((kind, model), person, vector)
            if centroid is not None and centroid < veto:
                vetoed = True
        if not passed or vetoed or not people.allowed(row, person):
            continue
        kind = max(passed, key=lambda k: passed[k])
        similarity = passed[kind] + getattr(config, f"{kind}_match")
        evidence = "both" if len(passed) == 2 else kind
        score = max(passed.values())
        if best is None or score > best[0]:
            best = (score, person, Assignment(person, similarity, evidence))
    return None if best is None else best[2]


def apply_decisions(assignments: dict[UnitKey, Assignment], decisions: Iterable[Decision]) -> dict[UnitKey, Assignment]:
    """Merges and splits, in the order made (names live on the people table). Idempotent."""
    result = dict(assignments)
    for decision in decisions:
        if decision.action == "merge":
            for key, a in result.items():
                if a.person_id == decision.other:
                    result[key] = Assignment(decision.person_id, a.similarity, "manual")
        elif decision.action == "split" and decision.key in result:
            a = result[decision.key]
            result[decision.key] = Assignment(decision.person_id, a.similarity, "manual")
    return result
