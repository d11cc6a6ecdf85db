"""Per-stage pipeline benchmark against the decode floor, with peak memory, and RCMA throughput.

    .venv/bin/python benchmarks/bench_pipeline.py [--durations 30,300,1800] [--sizes 640x480,1280x720]
    .venv/bin/python benchmarks/bench_pipeline.py --quick          # 30 s clips only

Media: one 30 s clip per size with a real moving face (tasks/synth/faces.py) and
three-speaker espeak-ng speech throughout (tasks/synth/speech.py), looped with
ffmpeg ``-stream_loop`` (stream copy) to 5 and 30 minutes; cached under
``~/.cache/affectflow/bench``.

How a video is timed: each video runs in a fresh subprocess that first processes a 4 s
clip of the same size (loading every model: the "load" column, not counted), then runs
``affectflow.flows.video.run_video`` — the real per-video orchestration — with its steps as plain
functions (``VideoSteps.plain()``), so stage times hold no Prefect engine or server overhead.
Nothing is patched: ``run_video`` takes a timer that also records peak RSS per step and splits
the emotions stage into features and RCMA by the stage's own progress steps, and a frame source
that times waiting for decoded frames ("decode", taken out of the faces stage's time). The
faces branch (faces, then speaking once the turns are in) runs beside diarization and
transcription (flows/video.run_stages), so those stage times overlap: they add up to more
than the whole pipeline, and each is longer than it would be alone on the same cores. Peak RSS
is the process's VmHWM during the video only (reset via /proc/self/clear_refs after the
warm-up), also per stage (approximate for overlapping stages: the high-water mark is per process). The decode floor is
``tasks/media/frames.iter_frames`` over the same file at the pipeline's fps and max_side,
doing nothing with the frames. ``--e2e`` (default on when a 5-minute clip is in the
run) also times ``affectflow run`` on the 5-minute clip once, Prefect and model loads
included. Every result line carries ``os.getloadavg()``: timings on a busy machine are
not comparable, ratios measured in one process (pipeline / floor) are more robust.
``--malloc-trim`` (an experiment) returns freed heap to the system after every stage, to show
how much of the peak is memory glibc kept from earlier stages.

RCMA throughput: the shipped checkpoint through ``affectflow.tasks.emotions.infer.RCMAPredictor.predict``
(windows, batching and overlap blending included) over a 30-minute and a 15-minute track.

Targets on 2 CPU cores with the offline defaults: pipeline RTF ≤ 0.5, pipeline ≤ 5× the
decode floor, RCMA ≥ 100,000 frames/s, peak RSS of 30 min ≤ peak RSS of 5 min (+ 10 %).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "affectflow" / "bench"
MEDIA_VERSION = "v1"  # bump when the generated media change
BASE_S = 30  # the generated clip that longer media loop
WARMUP_S = 4
TRIM_ENV = "AFFECTFLOW_BENCH_MALLOC_TRIM"  # set by --malloc-trim for the video subprocesses
RSS_TOLERANCE = 1.10  # peak RSS(30 min) may exceed peak RSS(5 min) by this factor
ROWS = (  # (key in the child's JSON, label)
    ("media", "media: stage + probe + audio"),
    ("decode", "decode (frames, in faces)"),
    ("faces", "faces (detect, track, crops)"),
    ("diarize", "diarization"),
    ("transcribe", "transcription"),
    ("speaking", "speaking (face ↔ voice)"),
    ("features", "features"),
    ("rcma", "RCMA inference"),
    ("emotions_other", "emotions: speakers, rows"),
    ("write", "write tables"),
    ("pipeline", "whole pipeline"),
    ("floor", "decode floor"),
)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def load() -> str:
    return "load avg " + " ".join(f"{x:.2f}" for x in os.getloadavg())


# -- media ----------------------------------------------------------------------------------


def speech_track() -> Path:
    """≥ 30 s of three-speaker espeak-ng conversation (shared by all sizes)."""
    from affectflow.tasks.synth.speech import make_long_speech

    path = CACHE / MEDIA_VERSION / "speech.wav"
    if not path.is_file():
        tmp = path.with_suffix(".tmp.wav")
        make_long_speech(tmp, minutes=(BASE_S + 5) / 60)
        tmp.rename(path)
    return path


def base_clip(size: tuple[int, int]) -> Path:
    """30 s, one moving real face, speech throughout (H.264 + AAC)."""
    from affectflow.tasks.synth.faces import make_face_video

    path = CACHE / MEDIA_VERSION / f"{size[0]}x{size[1]}-{BASE_S}s.mp4"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)  # a new machine has no cache yet
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            video = make_face_video(Path(tmp) / "video.mp4", n_faces=1, seconds=BASE_S, size=size)
            out = Path(tmp) / "clip.mp4"
            mux = ("-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-t", str(BASE_S))
            ffmpeg("-i", str(video), "-i", str(speech_track()), *mux, str(out))
            out.rename(path)
    return path


def media(size: tuple[int, int], seconds: int) -> Path:
    """The clip looped (stream copy, so minutes of media cost seconds) to ``seconds``."""
    base = base_clip(size)
    if seconds == BASE_S:
        return base
    path = base.with_name(f"{size[0]}x{size[1]}-{seconds}s.mp4")
    if not path.is_file():
        tmp = path.with_suffix(".tmp.mp4")
        ffmpeg("-stream_loop", "-1", "-i", str(base), "-t", str(seconds), "-c", "copy", str(tmp))
        tmp.rename(path)
    return path


def warmup_clip(size: tuple[int, int]) -> Path:
    path = CACHE / MEDIA_VERSION / f"{size[0]}x{size[1]}-warmup.mp4"
    if not path.is_file():
        tmp = path.with_suffix(".tmp.mp4")
        ffmpeg("-i", str(base_clip(size)), "-t", str(WARMUP_S), "-c:v", "libx264", "-c:a", "aac", str(tmp))
        tmp.rename(path)
    return path


# -- one video, in a fresh process -----------------------------------------------------------


class Memory:
    """Peak RSS per interval: VmHWM, reset through /proc/self/clear_refs (Linux ≥ 4.0)."""

    def __init__(self) -> None:
        self.resettable = True
        self.overall = 0

    def hwm_kib(self) -> int:
        return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))  # type: ignore[union-attr]

    def reset(self) -> None:
        """Start a new interval (the previous one's peak still counts towards ``overall``)."""
        self.overall = max(self.overall, self.hwm_kib())
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.resettable = False

    def peak_mib(self) -> float:
        peak = self.hwm_kib()
        self.overall = max(self.overall, peak)
        return round(peak / 1024, 1)


def instrument(memory: Memory, seconds: dict[str, float], stage_rss: dict[str, float]) -> tuple[Any, Any, Any]:
    """The pipeline's own steps as plain functions, a timer that also records peak RSS per step, and a
    frame source that times decoding: everything ``run_video`` takes, nothing patched."""
    from affectflow.flows.video import DEFAULT_STEPS, StageTimer
    from affectflow.tasks.media.frames import iter_frames

    trim = _malloc_trim if os.environ.get(TRIM_ENV) else lambda: None

    class MeasuringTimer(StageTimer):
        def __call__(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
            memory.reset()
            try:
                return super().__call__(name, fn, *args)
            finally:
                stage_rss[name] = max(stage_rss.get(name, 0.0), memory.peak_mib())
                trim()

    def timed_frames(*args: Any, **kwargs: Any) -> Iterator[Any]:
        stream = iter_frames(*args, **kwargs)
        try:
            while True:
                begin = time.perf_counter()
                frame = next(stream, None)
                seconds["decode"] = seconds.get("decode", 0.0) + time.perf_counter() - begin
                if frame is None:
                    return
                yield frame
        finally:
            stream.close()

    return DEFAULT_STEPS.plain(), MeasuringTimer, timed_frames


def _malloc_trim() -> None:
    """Give freed heap back to the system (glibc keeps it, so RSS carries one stage's garbage into the next)."""
    import ctypes

    ctypes.CDLL("libc.so.6").malloc_trim(0)


def child(video_path: Path, warmup_path: Path, stages: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Warm up, then process ``video_path`` once; everything the parent prints, as a dict."""
    from affectflow.flows.video import run_video
    from affectflow.tasks.config import PipelineConfig
    from affectflow.tasks.media.frames import iter_frames
    from affectflow.tasks.media.probe import probe
    from affectflow.tasks.storage.discover import discover

    memory = Memory()
    seconds: dict[str, float] = {}
    stage_rss: dict[str, float] = {}
    steps, Timer, timed_frames = instrument(memory, seconds, stage_rss)
    config = PipelineConfig(stages=stages) if stages else PipelineConfig()
    with tempfile.TemporaryDirectory(prefix="affectflow-bench-") as out:
        begin = time.perf_counter()
        warm = run_video(discover(str(warmup_path))[0], out, config, "bench-warmup", steps=steps, timer=Timer())
        load_s = time.perf_counter() - begin
        if warm.status != "ok":
            raise SystemExit(f"warm-up failed: {warm.error}")
        rss_after_load = memory.peak_mib()
        seconds.clear()
        stage_rss.clear()
        memory.reset()
        memory.overall = 0
        timer = Timer()
        result = run_video(
            discover(str(video_path))[0], out, config, "bench", steps=steps, timer=timer, frames=timed_frames
        )
        if result.status != "ok":
            raise SystemExit(f"pipeline failed: {result.error}")
        peak_rss = max(memory.overall, memory.hwm_kib()) / 1024
        row = _videos_row(out, result.video_id)
    stage = result.stage_seconds
    decode = seconds.get("decode", 0.0)
    emotions = stage.get("emotions", 0.0)
    info = probe(video_path)
    floor = decode_floor(iter_frames, video_path, info, config)
    features = sum(t for step, t in timer.steps.items() if step.startswith("features: "))
    rcma = timer.steps.get("emotions: rcma", 0.0)
    return {
        "video": video_path.name,
        "duration_s": info.duration_s,
        "size": f"{info.width}x{info.height}",
        "fps": config.fps,
        "n_frames_analysed": row["n_frames_analysed"],
        "load_s": round(load_s, 2),
        "media": stage.get("stage", 0) + stage.get("probe", 0) + stage.get("audio", 0),
        "decode": decode,
        "faces": stage.get("faces", 0.0) - decode,
        "diarize": stage.get("diarize", 0.0),
        "transcribe": stage.get("transcribe", 0.0),
        "speaking": stage.get("speaking", 0.0),
        "features": features,
        "rcma": rcma,
        "emotions_other": emotions - features - rcma,
        "write": stage.get("write", 0.0),
        "pipeline": result.elapsed_s,
        "floor": floor,
        "peak_rss_mib": round(peak_rss, 1),
        "rss_after_load_mib": rss_after_load,
        "stage_rss_mib": stage_rss,
        "rss_resettable": memory.resettable,
        "threads": _threads(),
        "load": os.getloadavg(),
        "longest": sorted(timer.longest.items(), key=lambda item: -item[1])[:3],
    }


def decode_floor(iter_frames: Callable[..., Iterator[Any]], path: Path, info: Any, config: Any) -> float:
    """Seconds to pull every analysed frame out of ffmpeg and do nothing with it."""
    begin = time.perf_counter()
    n = sum(1 for _ in iter_frames(path, info, config.fps, max_side=config.max_side))
    elapsed = time.perf_counter() - begin
    return elapsed if n else float("nan")


def _videos_row(out: str, video_id: str) -> dict[str, Any]:
    import pyarrow.parquet as pq

    table = pq.read_table(Path(out) / "videos" / f"video_id={video_id}" / "part-0.parquet")
    return table.to_pylist()[0]


def _threads() -> dict[str, int]:
    import torch

    return {"torch": torch.get_num_threads(), "cpus": os.cpu_count() or 0}


# -- RCMA throughput --------------------------------------------------------------------------


def rcma_throughput(repeat: int = 3) -> dict[str, Any]:
    """Frames/s of the shipped checkpoint over two long tracks, as the pipeline runs it and in eager PyTorch."""
    import copy

    import numpy as np
    import torch

    from affectflow.tasks.emotions.infer import EmotionConfig, load_predictor
    from affectflow.tasks.features.timeline import TrackFeatures

    predictor = load_predictor(EmotionConfig())
    assert hasattr(predictor, "model_net")
    eager = copy.copy(predictor)
    eager.session, eager.runtime = None, "torch (cpu)"
    rng = np.random.default_rng(0)
    encoders = predictor.model_net.encoders

    def track(track_id: int, steps: int) -> TrackFeatures:
        features, masks = {}, {}
        for m in ("visual", "audio", "text"):
            mean, std = encoders[m].mean.numpy(), encoders[m].std.numpy()
            features[m] = (mean + std * rng.standard_normal((steps, len(mean)))).astype(np.float32)
            masks[m] = rng.random(steps) > 0.1
        return TrackFeatures(track_id, np.arange(steps) / 5.0, np.arange(steps), features, masks, [])

    tracks = [track(0, 9000), track(1, 4500)]  # a 30-minute and a 15-minute face track at 5 fps
    n = sum(tr.n_steps for tr in tracks)
    results: dict[str, Any] = {"frames": n, "threads": torch.get_num_threads(), "batch": predictor.batch_size}
    outputs = {}
    for name, runner in (("pipeline", predictor), ("eager", eager)):
        runner.predict(tracks[:1])  # warm
        runs = []
        for _ in range(repeat):
            begin = time.perf_counter()
            outputs[name] = runner.predict(tracks)
            runs.append(time.perf_counter() - begin)
        seconds = statistics.median(runs)
        results[name] = {"runtime": runner.runtime, "seconds": seconds, "frames_per_s": n / seconds, "load": load()}
    results["max_difference"] = max(
        float(np.abs(a - b).max()) for a, b in zip(outputs["pipeline"], outputs["eager"], strict=True)
    )
    return results


# -- end to end --------------------------------------------------------------------------------


def end_to_end(video_path: Path) -> float:
    """Wall seconds of ``affectflow run`` on one video (Prefect, model loads and all)."""
    with tempfile.TemporaryDirectory(prefix="affectflow-bench-e2e-") as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        os.symlink(video_path, source / video_path.name)
        env = dict(os.environ, PREFECT_HOME=str(Path(tmp) / "prefect"), AFFECTFLOW_KEEP_WARM="off")  # in-process
        exe = Path(sys.executable).with_name("affectflow")
        begin = time.perf_counter()
        subprocess.run(
            [str(exe), "run", str(source), "--out", str(Path(tmp) / "out")],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - begin


# -- the report --------------------------------------------------------------------------------


def run_child(video: Path, warmup: Path, stages: str | None = None) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        command = [sys.executable, __file__, "--child", str(video), "--warmup", str(warmup), "--result", result.name]
        command += ["--stages", stages] if stages else []
        subprocess.run(command, check=True)
        return json.loads(Path(result.name).read_text())


def print_video(r: dict[str, Any]) -> None:
    d = r["duration_s"]
    print(
        f"\n{r['size']}, {d:.0f} s, {r['n_frames_analysed']} frames analysed at {r['fps']:g} fps "
        f"(models loaded in {r['load_s']:.1f} s, not counted; torch threads {r['threads']['torch']}/"
        f"{r['threads']['cpus']} cpus; load avg at end {' '.join(f'{x:.2f}' for x in r['load'])})"
    )
    print(f"  {'stage':<30} {'seconds':>8} {'RTF':>7} {'peak RSS MiB':>13}")
    stage_rss = {
        "media": max(r["stage_rss_mib"].get(k, 0) for k in ("stage", "probe", "audio")),
        "faces": r["stage_rss_mib"].get("faces"),
        "diarize": r["stage_rss_mib"].get("diarize"),
        "transcribe": r["stage_rss_mib"].get("transcribe"),
        "speaking": r["stage_rss_mib"].get("speaking"),
        "rcma": r["stage_rss_mib"].get("emotions"),
        "write": r["stage_rss_mib"].get("write"),
        "pipeline": r["peak_rss_mib"],
    }
    for key, label in ROWS:
        rss = stage_rss.get(key)
        rss_text = f"{rss:13.0f}" if rss else ""
        if key == "rcma" and rss:
            rss_text += " (emotions)"
        print(f"  {label:<30} {r[key]:8.2f} {r[key] / d:7.3f} {rss_text}")
    print(f"  {'pipeline / decode floor':<30} {r['pipeline'] / r['floor']:8.1f}x")
    print(f"  {'RSS after model loads':<30} {'':>16} {r['rss_after_load_mib']:13.0f}")
    stretches = "; ".join(f"{seconds:.2f} s in {step}" for step, seconds in r["longest"])
    print(f"  longest stretches without a progress step (how late a stop or timeout acts): {stretches}")
    if not r["rss_resettable"]:
        print("  (/proc/self/clear_refs not writable: peaks include the warm-up)")


def print_summary(results: list[dict[str, Any]], rcma: dict[str, Any] | None, e2e: tuple[str, float] | None) -> None:
    print("\n| media | pipeline s | RTF | decode floor RTF | pipeline / floor | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        d = r["duration_s"]
        print(
            f"| {r['size']}, {d:.0f} s | {r['pipeline']:.1f} | {r['pipeline'] / d:.3f} | {r['floor'] / d:.4f} "
            f"| {r['pipeline'] / r['floor']:.1f}× | {r['peak_rss_mib']:.0f} |"
        )
    print("\ntargets (2 CPU cores): RTF ≤ 0.5, pipeline ≤ 5× floor, RCMA ≥ 100,000 frames/s, RSS(30 min) ≤ RSS(5 min)")
    for r in results:
        d = r["duration_s"]
        rtf, ratio = r["pipeline"] / d, r["pipeline"] / r["floor"]
        step, stretch = r["longest"][0]
        print(
            f"  {r['size']} {d:5.0f} s: RTF {rtf:.3f} {'ok' if rtf <= 0.5 else 'MISSED'}, "
            f"{ratio:.1f}× floor {'ok' if ratio <= 5 else 'MISSED'}; a stop acts within {stretch:.2f} s ({step})"
        )
    by_size: dict[str, dict[float, float]] = {}
    for r in results:
        by_size.setdefault(r["size"], {})[round(r["duration_s"])] = r["peak_rss_mib"]
    for size, peaks in by_size.items():
        if 300 in peaks and 1800 in peaks:
            ok = peaks[1800] <= peaks[300] * RSS_TOLERANCE
            print(
                f"  {size} peak RSS 30 min {peaks[1800]:.0f} MiB vs 5 min {peaks[300]:.0f} MiB: "
                f"{'ok' if ok else 'MISSED'} (tolerance {RSS_TOLERANCE - 1:.0%})"
            )
    if rcma:
        for name in ("pipeline", "eager"):
            r = rcma[name]
            ok = "ok" if r["frames_per_s"] >= 100_000 else "MISSED"
            print(
                f"  RCMA inference, {r['runtime']}: {r['frames_per_s']:,.0f} frames/s ({rcma['frames']} frames in "
                f"{r['seconds']:.3f} s, batch {rcma['batch']}, {rcma['threads']} threads) {ok if name == 'pipeline' else ''}"
                f"; {r['load']}"
            )
        print(f"  RCMA onnxruntime vs PyTorch: max |difference| {rcma['max_difference']:.1e}")
    if e2e:
        name, seconds = e2e
        print(f"  affectflow run on {name} (Prefect, model loads included): {seconds:.1f} s wall; {load()}")


def print_markdown(results: list[dict[str, Any]]) -> None:
    """The per-stage table for the README: seconds and RTF of every stage, one column per video."""
    heads = [f"{r['size'].replace('x', '×')}, {_duration(r['duration_s'])}" for r in results]
    print("\n| stage: seconds (RTF) | " + " | ".join(heads) + " |")
    print("|---|" + "---:|" * len(results))
    for key, label in ROWS:
        cells = [f"{r[key]:.1f} ({r[key] / r['duration_s']:.3f})" for r in results]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("| pipeline / decode floor | " + " | ".join(f"{r['pipeline'] / r['floor']:.1f}×" for r in results) + " |")
    print("| peak RSS, MiB (after loads) | " + " | ".join(_rss(r) for r in results) + " |")
    print("| load average (1 min) at end | " + " | ".join(f"{r['load'][0]:.1f}" for r in results) + " |")


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _rss(r: dict[str, Any]) -> str:
    return f"{r['peak_rss_mib']:.0f} ({r['rss_after_load_mib']:.0f})"


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        match = re.fullmatch(r"(\d+)x(\d+)", item.strip())
        if not match:
            raise SystemExit(f"bad size {item!r}: use WIDTHxHEIGHT, e.g. 640x480")
        sizes.append((int(match[1]), int(match[2])))
    return sizes


def parse_durations(text: str) -> list[int]:
    try:
        durations = [int(x) for x in text.split(",")]
    except ValueError:
        raise SystemExit(f"bad durations {text!r}: use seconds, e.g. 30,300,1800") from None
    if any(d < BASE_S or d % BASE_S for d in durations):
        raise SystemExit(f"durations must be multiples of {BASE_S} s")
    return durations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--durations", default="30,300,1800", help="seconds of media, multiples of 30")
    parser.add_argument("--sizes", default="640x480,1280x720")
    parser.add_argument("--quick", action="store_true", help="30 s clips only")
    parser.add_argument("--e2e", action=argparse.BooleanOptionalAction, default=None, help="time `affectflow run`")
    parser.add_argument("--rcma", action=argparse.BooleanOptionalAction, default=True, help="RCMA frames/s")
    parser.add_argument("--json", type=Path, help="also write all results here")
    parser.add_argument(
        "--stages", help="comma-separated analysis stages (default: all), e.g. to compare with a tree that lacks one"
    )
    parser.add_argument(
        "--malloc-trim", action="store_true", help="experiment: return freed heap to the system after every stage"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    _quiet()
    if args.malloc_trim:
        os.environ[TRIM_ENV] = "1"
    if args.child:
        stages = tuple(args.stages.split(",")) if args.stages else None
        args.result.write_text(json.dumps(child(args.child, args.warmup, stages)))
        return
    durations = [BASE_S] if args.quick else parse_durations(args.durations)
    sizes = parse_sizes(args.sizes)
    CACHE.joinpath(MEDIA_VERSION).mkdir(parents=True, exist_ok=True)
    print(f"cpus {os.cpu_count()}; media cached under {CACHE / MEDIA_VERSION}; {load()}")
    results = []
    for seconds in durations:
        for size in sizes:
            result = run_child(media(size, seconds), warmup_clip(size), args.stages)
            print_video(result)
            results.append(result)
            sys.stdout.flush()
    rcma = rcma_throughput() if args.rcma else None
    e2e = None
    if args.e2e or (args.e2e is None and 300 in durations):
        clip = media(sizes[0], 300)
        e2e = (clip.name, end_to_end(clip))
    print_summary(results, rcma, e2e)
    print_markdown(results)
    if args.json:
        args.json.write_text(json.dumps({"videos": results, "rcma": rcma, "e2e": e2e}, indent=1))


def _quiet() -> None:
    """Library chatter off (as the CLI does without --verbose)."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
    if not os.environ.get("PREFECT_HOME"):
        home = tempfile.mkdtemp(prefix="affectflow-bench-prefect-")
        os.environ["PREFECT_HOME"] = home
        import atexit

        atexit.register(shutil.rmtree, home, ignore_errors=True)


if __name__ == "__main__":
    main()
