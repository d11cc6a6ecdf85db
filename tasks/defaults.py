"""Defaults the CLI needs before any model module is imported (keeps `--help` instant)."""

DEFAULT_FPS = 5.0  # analysed frames per second: emotion moves slower than video
ALL_STAGES = ("faces", "diarize", "transcribe", "speaking", "emotions")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")
