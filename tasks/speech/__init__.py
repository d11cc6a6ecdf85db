"""Speech: diarization, speaker-embedding clustering, transcription, word-speaker attribution.

``DIARIZERS`` names the diarization backends of ``diarize.py``, the default first. It lives
here, away from the models' imports, so the command line offers the choices without loading them.
"""

DIARIZERS = ("default", "constrained", "pyannote")  # constrained: docs/speech.md, "Speaker count"
