#!/usr/bin/env bash
# Build affectflow's wheel, install it non-editable into a fresh venv, and use it as a user would:
# `affectflow --help`, a `--stages faces` run on a generated clip, `affectflow sql` over its tables.
#
# The fresh venv sees the dependencies already installed in .venv (a .pth line naming .venv's
# site-packages: a path in a .pth file is added to sys.path without running that folder's own
# .pth files, so .venv's editable install of affectflow is invisible), so the smoke test costs
# seconds, not a 7 GB install; affectflow itself comes only from the wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
work=$(mktemp -d "${TMPDIR:-/tmp}/affectflow-wheel-XXXXXX")
trap 'rm -rf "$work"' EXIT

"$python" -m pip wheel --quiet --disable-pip-version-check --no-deps . -w "$work/dist"
wheel=$(ls "$work"/dist/affectflow-*.whl)
"$python" -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$wheel" > "$work/contents"
tops=$(cut -d/ -f1 "$work/contents" | grep -v '\.dist-info$' | sort -u | tr '\n' ' ')
[ "$tops" = "affectflow " ] || { echo "wheel: top-level entries are '$tops', expected only affectflow" >&2; exit 1; }
grep -q '^affectflow/sql/views.sql$' "$work/contents" || { echo "wheel: no sql/views.sql" >&2; exit 1; }
grep -q '^affectflow/model/checkpoints/.*\.pt$' "$work/contents" || { echo "wheel: no checkpoint" >&2; exit 1; }
grep -q '^affectflow/tasks/speech/ge2e_calibration.npz$' "$work/contents" || { echo "wheel: no diarizer calibration" >&2; exit 1; }

"$python" -m venv "$work/venv"
site_packages() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
site_packages "$python" > "$(site_packages "$work/venv/bin/python")/affectflow-deps.pth"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$wheel"
bin=$work/venv/bin

cd "$work"  # away from the checkout: nothing may come from the source tree
"$bin/python" - <<'PY'
import importlib.util, sys
import affectflow
assert "site-packages" in affectflow.__file__, affectflow.__file__
for generic in ("flows", "tasks", "model"):
    assert importlib.util.find_spec(generic) is None, f"a top-level {generic!r} package is importable"
PY
"$bin/affectflow" --help > /dev/null
"$bin/python" -c 'from pathlib import Path; from affectflow.tasks.synth.faces import make_face_video; Path("clips").mkdir(); make_face_video(Path("clips/face.mp4"), seconds=2.0)'
"$bin/affectflow" run clips --out out --stages faces
count=$("$bin/affectflow" sql --out out --format csv "SELECT count(*) AS n FROM faces" | tail -1)
[ "$count" -gt 0 ] || { echo "wheel smoke: no faces rows from the wheel's run" >&2; exit 1; }
echo "wheel smoke: ok ($(basename "$wheel"), $count face rows)"
