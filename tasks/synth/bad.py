"""Bad inputs every corpus has: each must end as a recorded status, never a crash."""

from __future__ import annotations

import random
import struct
import subprocess
from pathlib import Path

from affectflow.tasks.media.tools import ffmpeg_exe


def ffmpeg(*args: str) -> None:
    """Run the pipeline's own ffmpeg (AFFECTFLOW_FFMPEG or PATH; a clear error when missing)."""
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def make_bad_files(directory: Path) -> dict[str, str]:
    """Write the bad files; return {file name: the error text a user should see (a substring)}."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "zero_bytes.mp4").write_bytes(b"")
    (directory / "not_a_video.mp4").write_text("this is a text file with a video extension\n")
    whole = directory / ".whole.mp4"  # hidden: discovery ignores dot-files
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(whole),
    )
    data = whole.read_bytes()
    (directory / "truncated.mp4").write_bytes(data[: len(data) // 2])  # mp4 index (moov) is at the end: lost
    whole.unlink()
    return {
        "zero_bytes.mp4": "empty file",
        "not_a_video.mp4": "not a readable media file",
        "truncated.mp4": "not a readable media file",
    }


def make_undecodable_videos(directory: Path) -> dict[str, str]:
    """Files that probe well but do not decode; return {file name: the error text a user should see}.

    Before decodes were verified both came out ``ok`` with nothing analysed (issue 21).
    """
    directory.mkdir(parents=True, exist_ok=True)
    # mp4s whose header (moov, first: faststart) is intact: 4 s of picture and sound promised.
    whole = directory / ".whole.mp4"
    make_testsrc_video(whole, seconds=4.0, faststart=True)
    data = whole.read_bytes()
    body = data.index(b"mdat") + 4
    noise = random.Random(21).randbytes(len(data) - body)
    (directory / "random_frames.mp4").write_bytes(data[:body] + noise)  # the frames are random bytes
    (directory / "truncated_download.mp4").write_bytes(data[: len(data) // 2])  # ffmpeg decodes ~40 %, exits 0
    whole.unlink()
    # An MJPEG AVI whose headers and JPEGs all declare 16000×16000 pixels over 320×240 of data.
    small = directory / ".small.avi"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=4", "-t", "1", "-c:v", "mjpeg", str(small))
    avi = bytearray(small.read_bytes())
    struct.pack_into("<II", avi, avi.index(b"avih") + 8 + 32, 16000, 16000)  # MainAVIHeader dwWidth, dwHeight
    struct.pack_into("<ii", avi, avi.index(b"strf") + 8 + 4, 16000, 16000)  # BITMAPINFOHEADER biWidth, biHeight
    at = 0
    while (at := avi.find(b"\xff\xc0", at)) >= 0:  # each JPEG's SOF0: length, precision, height, width
        struct.pack_into(">HH", avi, at + 5, 16000, 16000)
        at += 2
    (directory / "huge_mjpeg.avi").write_bytes(avi)
    small.unlink()
    return {
        "random_frames.mp4": "decode failed",
        "truncated_download.mp4": "decode stopped early",
        "huge_mjpeg.avi": "video decode failed",
    }


def make_testsrc_video(
    path: Path,
    seconds: float = 2.0,
    *,
    audio: bool = True,
    size: str = "320x240",
    fps: int = 25,
    faststart: bool = False,
) -> Path:
    """A faceless synthetic clip (colour bars + tone), for checks that need no faces.

    ``faststart``: the mp4 index (moov) before the frames, as streaming servers want it.
    """
    inputs = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    codecs = ["-c:v", "libx264", "-pix_fmt", "yuv420p"] + (["-c:a", "aac"] if audio else [])
    codecs += ["-movflags", "+faststart"] if faststart else []
    ffmpeg(*inputs, "-t", str(seconds), *codecs, str(path))
    return path


def make_odd_videos(directory: Path, face_clip: Path) -> dict[str, str]:
    """Valid but unusual files real corpora hold; return {file name: expected status}.

    ``face_clip`` (a short clip with a real face, no audio) is the picture for the
    rotated phone video, so the test can check faces are found upright after rotation;
    the 4K clip has a face too, so boxes must come back in 4K source pixels.
    """
    directory.mkdir(parents=True, exist_ok=True)
    bars = ["-f", "lavfi", "-i"]
    h264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    # A container with no frames at all: nothing to analyse is a bad input, not a crash.
    ffmpeg(*bars, "testsrc=size=320x240:rate=25", "-frames:v", "0", *h264, str(directory / "zero_frames.mp4"))
    # Audio that outlasts the picture (3 s of sound under 1 s of video).
    ffmpeg(
        "-t", "1", *bars, "testsrc=size=320x240:rate=25",
        "-t", "3", *bars, "sine=frequency=300:sample_rate=16000",
        "-map", "0:v", *h264, "-map", "1:a", "-c:a", "aac", str(directory / "audio_longer_than_video.mp4"),
    )  # fmt: skip
    # Variable frame rate: irregular gaps between frames, as screen recordings and phones make.
    ffmpeg(
        "-t", "3", *bars, "testsrc=size=320x240:rate=30",
        "-vf", r"select='lt(mod(n\,10)\,3)+eq(mod(n\,17)\,0)'", "-fps_mode", "vfr", *h264, str(directory / "vfr.mp4"),
    )  # fmt: skip
    # A phone held sideways: pixels stored rotated, a display matrix saying how to turn them upright.
    sideways = directory / ".sideways.mp4"
    ffmpeg("-i", str(face_clip), "-vf", "transpose=1", *h264, str(sideways))  # stored turned 90° clockwise
    ffmpeg("-i", str(sideways), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(directory / "rotated_phone.mp4"))
    sideways.unlink()
    ffmpeg(*bars, "testsrc=size=320x240:rate=1", "-t", "5", *h264, str(directory / "timelapse_1fps.mp4"))
    from affectflow.tasks.synth.faces import make_face_video  # here: the bad files themselves need no face images

    make_face_video(directory / "uhd_4k.mp4", seconds=1.0, fps=5, size=(3840, 2160))
    make_testsrc_video(directory / "vidéo d'été 1.mp4", seconds=1.0)  # non-ASCII, spaces, a quote
    return {
        "zero_frames.mp4": "failed",
        "audio_longer_than_video.mp4": "ok",
        "vfr.mp4": "ok",
        "rotated_phone.mp4": "ok",
        "timelapse_1fps.mp4": "ok",
        "uhd_4k.mp4": "ok",
        "vidéo d'été 1.mp4": "ok",
    }
