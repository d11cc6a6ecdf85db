"""Per-video leases: one holder at a time, stale leases taken over by exactly one taker."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from affectflow.tasks.storage import leases
from affectflow.tasks.storage.leases import LeaseHeld, acquire, held
from affectflow.tasks.storage.store import Store

pytestmark = pytest.mark.unit


def lease_file(out: Path, key: str) -> Path:
    return out / "_leases" / f"{key}.json"


def test_a_second_acquirer_gets_none_while_the_first_holds_the_lease(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    first = acquire(store, "v1", owner="run-a")
    assert first is not None
    assert acquire(store, "v1", owner="run-b") is None
    record = json.loads(lease_file(tmp_path, "v1").read_text())
    assert (record["owner"], record["pid"]) == ("run-a", first.pid)
    assert record["expires"] > record["acquired"]
    first.release()
    assert not lease_file(tmp_path, "v1").exists()
    assert acquire(store, "v1", owner="run-b") is not None


def test_held_names_the_holder_run_host_and_pid(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    with held(store, "v1", "run-a") as lease:
        with pytest.raises(LeaseHeld) as caught, held(store, "v1", "run-b"):
            pass
        assert caught.value.holder == f"run run-a on {lease.host} (pid {lease.pid})"
    assert not lease_file(tmp_path, "v1").exists()  # released on leaving the block


def test_an_expired_lease_is_taken_over(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    old = acquire(store, "v1", owner="run-a", ttl_s=0.2)
    assert old is not None and acquire(store, "v1", owner="run-b") is None
    time.sleep(0.3)
    new = acquire(store, "v1", owner="run-b")
    assert new is not None
    assert json.loads(lease_file(tmp_path, "v1").read_text())["owner"] == "run-b"
    assert not old.refresh() and old.lost  # the stalled holder learns it lost the lease
    old.release()  # and releasing it leaves the new holder's lease alone
    assert json.loads(lease_file(tmp_path, "v1").read_text())["token"] == new.token


def test_a_lease_of_a_dead_process_on_this_host_is_stale_before_expiry(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    code = (
        "import sys; from affectflow.tasks.storage.leases import acquire; from affectflow.tasks.storage.store import Store;"
        "assert acquire(Store(sys.argv[1]), 'v1', owner='run-dead', ttl_s=3600) is not None"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)  # exits holding the lease
    assert json.loads(lease_file(tmp_path, "v1").read_text())["owner"] == "run-dead"
    assert acquire(store, "v1", owner="run-b") is not None


def test_a_live_process_lease_is_not_stale(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from affectflow.tasks.storage.leases import acquire; "
            "from affectflow.tasks.storage.store import Store; "
            "assert acquire(Store(sys.argv[1]), 'v1', owner='run-live', ttl_s=3600); print('ok', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ok"
        assert acquire(Store(str(tmp_path)), "v1", owner="run-b") is None
    finally:
        holder.kill()
        holder.wait()


def test_the_heartbeat_keeps_a_lease_past_its_ttl(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    lease = acquire(store, "v1", owner="run-a", ttl_s=0.4)
    assert lease is not None
    with lease.heartbeat(interval_s=0.05):
        time.sleep(1.0)
        assert acquire(store, "v1", owner="run-b") is None
    assert not lease.lost


def _take(root: str, owner: str, start: threading.Event | None, wins: list[str]) -> None:
    if start is not None:
        start.wait()
    if acquire(Store(root), "v1", owner=owner) is not None:
        wins.append(owner)


def test_exactly_one_of_many_threads_takes_over_a_stale_lease(tmp_path: Path) -> None:
    for _ in range(20):  # each round: a fresh stale lease, 8 takers released at once
        store = Store(str(tmp_path))
        stale = acquire(store, "v1", owner="run-old", ttl_s=0.01)
        assert stale is not None
        time.sleep(0.02)
        start, wins = threading.Event(), list[str]()
        threads = [threading.Thread(target=_take, args=(str(tmp_path), f"t{i}", start, wins)) for i in range(8)]
        for thread in threads:
            thread.start()
        start.set()
        for thread in threads:
            thread.join()
        assert len(wins) == 1, wins
        assert json.loads(lease_file(tmp_path, "v1").read_text())["owner"] == wins[0]
        lease_file(tmp_path, "v1").unlink()


def _take_in_process(root: str, owner: str, barrier: Any, wins: Any) -> None:  # spawn-context Barrier / Queue
    barrier.wait()
    if acquire(Store(root), "v1", owner=owner) is not None:
        wins.put(owner)


def test_exactly_one_of_several_processes_takes_over_a_dead_holders_lease(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    assert acquire(store, "v1", owner="run-old", ttl_s=0.01) is not None
    time.sleep(0.02)
    context = multiprocessing.get_context("spawn")
    barrier, wins = context.Barrier(4), context.Queue()
    processes = [
        context.Process(target=_take_in_process, args=(str(tmp_path), f"p{i}", barrier, wins)) for i in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    winners = [wins.get(timeout=5) for _ in range(wins.qsize())] if not wins.empty() else []
    assert len(winners) == 1, winners
    assert json.loads(lease_file(tmp_path, "v1").read_text())["owner"] == winners[0]


def test_a_stale_lease_renewed_meanwhile_is_not_broken(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    lease = acquire(store, "v1", owner="run-a", ttl_s=0.05)
    assert lease is not None
    stale_view = leases.read(store, "v1")
    assert stale_view is not None
    time.sleep(0.1)
    replacement = acquire(store, "v1", owner="run-b")  # breaks it and takes it
    assert replacement is not None
    leases._break(store, "v1", stale_view)  # a slow taker still acting on the old, stale view
    assert json.loads(lease_file(tmp_path, "v1").read_text())["token"] == replacement.token


def test_release_removes_only_its_own_lease(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    mine = acquire(store, "v1", owner="run-a")
    other = acquire(store, "v2", owner="run-b")
    assert mine is not None and other is not None
    impostor = leases.Lease(store, "v2", "run-a", ttl_s=60)  # same key, not the holder's token
    impostor.release()
    assert lease_file(tmp_path, "v2").exists()
    mine.release()
    assert not lease_file(tmp_path, "v1").exists() and lease_file(tmp_path, "v2").exists()
