"""Who is speaking: each face track's own voice, from its mouth and the diarized turns (stage.py)."""
