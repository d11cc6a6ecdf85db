"""Features: per-modality extractors (visual, audio, text) and their alignment to the face timeline."""
