"""The people step: after a corpus run, give every face track and voice a corpus-wide person id.

One Prefect task (deterministic, so no retries) in a small flow; ``affectflow people link``
and the corpus flow call the same ``link_people``. Idempotent: linking unchanged outputs
writes a new snapshot with the same ids (tasks/people/link.py states the rules).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task

from affectflow.tasks.people.config import LinkConfig
from affectflow.tasks.people.link import Decision
from affectflow.tasks.people.snapshot import relink


@task(name="link-people")
def link_people(
    out: str,
    config: LinkConfig | None = None,
    decisions: list[Decision] | None = None,
    known_people: str | None = None,
    faces_backend: str | None = None,
    diarizer: str | None = None,
) -> dict[str, Any]:
    """Assign the new videos' tracks and voices to people (keeping every id); a summary of the link.

    ``known_people``: a gallery folder (one folder per named person: photos and/or WAV clips),
    embedded by ``faces_backend`` and ``diarizer`` (the defaults' when None): the ones the runs used.
    """
    gallery = None
    if known_people:
        from affectflow.tasks.faces.stage import FacesConfig
        from affectflow.tasks.people.gallery import gallery_units
        from affectflow.tasks.speech.diarize import DiarizeConfig

        faces = FacesConfig(backend=faces_backend) if faces_backend else FacesConfig()
        voices = DiarizeConfig(backend=diarizer) if diarizer else DiarizeConfig()
        gallery = gallery_units(Path(known_people), faces, voices)
    return relink(out, config or LinkConfig(), decisions, gallery)


@flow(name="link-people")
def people_flow(out: str) -> dict[str, Any]:
    """Link the people of the output root ``out`` (e.g. after a nightly corpus run)."""
    return link_people(out)
