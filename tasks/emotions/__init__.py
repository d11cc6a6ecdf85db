"""Emotions: valence/arousal inference (RCMA checkpoint or the teacher ensemble).

``MODELS`` names the emotion models ``infer.py`` runs, the default first. It lives here, away
from torch, so the command line offers the choices without loading them.
"""

MODELS = ("rcma", "teachers")
