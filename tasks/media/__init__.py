"""Media: staging, probing, frames and audio, all through ffmpeg/ffprobe subprocesses."""
