"""Scale-out on Dask (prefect-dask's DaskTaskRunner): same tables as the default runner, models loaded once per worker.

The default-runner result is the shared `pipeline_out` run over the `corpus` fixture; the
same corpus goes through a two-process LocalCluster on 127.0.0.1 that the test owns, so it
can ask each worker process afterwards how often it loaded its models.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from affectflow.flows.cli import build_parser, main
from affectflow.flows.scaleout import DASK_ADDRESS_ENV, dask_runner, local_cluster_kwargs
from affectflow.tasks.query.views import connect

pytestmark = pytest.mark.integration

# Per-run facts that legitimately differ between two runs of the same corpus.
RUN_COLUMNS = {"run_id", "started", "finished", "elapsed_s", "stage_seconds"}
KEYS = {
    "videos": "video_id",
    "faces": "video_id, track_id, frame",
    "emotions": "video_id, track_id, frame",
    "words": "video_id, start, word",
    "speaker_turns": "video_id, start, speaker",
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two worker processes with the thread settings of this process, as the default run had.

    Floats depend on threads per process (measured at 1 vs 2 threads: valence differs by up
    to 0.02, whisper word scores by up to 0.39), so Dask's OMP_NUM_THREADS=1 is not applied
    here; at equal threads the tables are identical.
    """
    import dask
    from distributed import Client, LocalCluster

    same_threads = local_cluster_kwargs(2) | {"env": {}}
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": {}}),
        LocalCluster(**same_threads) as local,
        Client(local) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def dask_out(cluster: Any, corpus, tmp_path_factory: pytest.TempPathFactory) -> str:  # type: ignore[no-untyped-def]
    out = str(tmp_path_factory.mktemp("dask-out"))
    address = cluster.scheduler.address
    assert main(["run", str(corpus.root), "--out", out, "--dask-address", address, "--workers", "2"]) == 1  # bad files
    return out


def rows(out: str, table: str) -> list[dict[str, Any]]:
    relation = connect(out).sql(f"SELECT * FROM {table} ORDER BY {KEYS[table]}")
    return [
        {k: v for k, v in zip(relation.columns, row, strict=True) if k not in RUN_COLUMNS}
        for row in relation.fetchall()
    ]


@pytest.mark.parametrize("table", sorted(KEYS))
def test_dask_cluster_gives_the_same_tables_as_the_default_runner(table: str, pipeline_out: str, dask_out: str) -> None:
    expected, got = rows(pipeline_out, table), rows(dask_out, table)
    assert len(got) == len(expected) > 0
    for want, have in zip(expected, got, strict=True):
        assert have.keys() == want.keys()
        for column, value in want.items():
            assert same(have[column], value), (table, column, want, have)


def same(a: Any, b: Any) -> bool:
    """Text and ids exactly; numbers within float noise (threads may sum in another order)."""
    if isinstance(b, float) and isinstance(a, float):
        return a == pytest.approx(b, rel=1e-4, abs=1e-4)
    if isinstance(b, list | tuple) and isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def test_each_worker_process_loads_its_models_once(cluster: Any, dask_out: str) -> None:
    def model_loads() -> dict[str, tuple[int, int]]:
        from affectflow.tasks.emotions import infer
        from affectflow.tasks.speech import diarize, transcribe

        loaders = {"emotions": infer.load_predictor, "diarize": diarize.load_pipeline, "asr": transcribe.load_asr}
        return {name: (fn.cache_info().misses, fn.cache_info().hits) for name, fn in loaders.items()}

    per_worker = cluster.run(model_loads)
    assert len(per_worker) == 2
    for loads in per_worker.values():
        assert all(misses <= 1 for misses, _ in loads.values()), per_worker
    ((n_good,),) = connect(dask_out).sql("SELECT count(*) FROM videos WHERE status = 'ok'").fetchall()
    calls = sum(misses + hits for loads in per_worker.values() for misses, hits in [loads["emotions"]])
    assert calls == n_good >= 3  # every video asked the cache for its emotion model: more videos than workers


def test_runner_choice_from_option_environment_or_local_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DASK_ADDRESS_ENV, raising=False)
    assert dask_runner(None, 0) is None  # default: the flow's own threads
    assert dask_runner("tcp://10.0.0.5:8786", 0).address == "tcp://10.0.0.5:8786"
    local = dask_runner(None, 2)
    assert local.address is None and local.cluster_kwargs["n_workers"] == 2
    assert local.cluster_kwargs["processes"] and local.cluster_kwargs["host"] == "127.0.0.1"
    args = build_parser().parse_args(["run", "src", "--out", "out", "--dask-local", "3"])
    assert (args.dask_local_workers, args.dask_address) == (3, None)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "src", "--out", "o", "--dask-local", "2", "--dask-address", "tcp://h:1"])


def test_dask_address_environment_variable_is_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from affectflow.flows import scaleout

    seen: list[Any] = []
    monkeypatch.setenv(DASK_ADDRESS_ENV, "tcp://scheduler:8786")
    monkeypatch.setattr(scaleout, "dask_runner", lambda address, n: seen.append((address, n)))
    with scaleout.video_submitter() as submit:
        assert submit is not None
    assert seen == [("tcp://scheduler:8786", 0)]
