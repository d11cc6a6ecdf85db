"""Per-video leases on the output root, so that concurrent runs never process one video twice.

Two runs may share one output root (a nightly run overlapping an on-demand folder run,
two workers of one deployment). Before a run works on a video it takes that video's
lease; a run that finds the lease held by a live holder skips the video.

Layout::

    <out>/_leases/<key>.json           the lease: owner (run id), host, pid, token, acquired, expires
    <out>/_leases/<key>.<token>.break  transient: the one taker allowed to break stale lease <token>

Rules:

- A lease is created only if absent, atomically and whole: locally a fully written
  temporary file is hard-linked into place (``link`` fails if the name exists, like
  ``O_CREAT|O_EXCL``, and no reader ever sees a half-written lease); on S3 one PUT with
  ``If-None-Match: *`` (s3fs ``pipe_file(mode="create")``, S3 answers 412 to all but one
  writer; checked with s3fs 2026.9 / moto 5.2). Other fsspec filesystems only get
  fsspec's check-then-write, which is not atomic: two runs on such a root can both win.
- A lease is live until ``expires``; its holder pushes ``expires`` forward from a
  heartbeat thread (every ``ttl_s / 4``). On the holder's own host a lease whose process
  is gone (pid dead, or reused by a process that started later) is stale at once.
  Expiry compares wall clocks, so hosts sharing a root need clocks within ``ttl_s``.
- A stale lease is broken by exactly one taker: only the taker that creates the
  ``.break`` marker for that lease's token (same atomic create) may delete it, and it
  re-reads the lease first, so a lease that was renewed or replaced meanwhile survives.
- A holder only refreshes or removes a lease that still carries its own token.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import fsspec
import psutil

from affectflow.tasks.storage.fs import is_local, url_to_fs
from affectflow.tasks.storage.store import Store, temporary_path

DEFAULT_TTL_S = 120.0  # a holder missing 3 heartbeats in a row (30 s apart) is still not taken over
GRACE = 0.1  # a holder gives its lease up once less than this share of ttl_s is left, so its late
# refresh cannot overwrite a taker's new lease unless the refresh itself takes longer than 0.1 · ttl_s


class LeaseHeld(Exception):  # noqa: N818 - the name other modules import (issue 23)
    """Another live run holds the lease of ``key``; ``holder`` says who ("run r1 on host-a (pid 42)")."""

    def __init__(self, key: str, holder: str):
        super().__init__(f"{key} is held by {holder}")
        self.key = key
        self.holder = holder


@dataclass
class Lease:
    """A lease this process holds; refresh it before ``expires`` and release it when done."""

    store: Store
    key: str
    owner: str
    ttl_s: float
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    acquired: float = field(default_factory=time.time)
    expires: float = 0.0
    lost: bool = False  # another taker broke it (this holder stalled past ``expires``)

    def record(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "owner": self.owner,
            "host": self.host,
            "pid": self.pid,
            "pid_started": _started(self.pid),
            "token": self.token,
            "acquired": self.acquired,
            "expires": self.expires,
        }

    def refresh(self) -> bool:
        """Push ``expires`` to now + ``ttl_s``; False (and ``lost``) when the lease is no longer ours."""
        if self.lost:
            return False
        current = read(self.store, self.key)
        if current is None or current.get("token") != self.token or time.time() >= self.expires - self.ttl_s * GRACE:
            self.lost = True  # near or past expiry another run may be taking it over: never resurrect it
            return False
        self.expires = time.time() + self.ttl_s
        _overwrite(self.store, lease_path(self.store, self.key), self.record())
        return True

    def release(self) -> None:
        """Remove the lease if it is still ours (a lease taken over by another run is left alone)."""
        current = read(self.store, self.key)
        if current is not None and current.get("token") == self.token:
            _remove(self.store, lease_path(self.store, self.key))
        self.lost = True

    @contextmanager
    def heartbeat(self, interval_s: float | None = None) -> Iterator[Lease]:
        """Refresh from a daemon thread every ``interval_s`` (``ttl_s / 4``) while the block runs."""
        stop = threading.Event()
        every = self.ttl_s / 4 if interval_s is None else interval_s

        def beat() -> None:
            while not stop.wait(every) and self.refresh():
                pass

        thread = threading.Thread(target=beat, name=f"lease-{self.key}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()


def video_key(uri: str) -> str:
    """The lease name of a source video: one per URI, like its manifest (and its ``video_id``)."""
    return hashlib.sha1(uri.encode()).hexdigest()


def lease_path(store: Store, key: str) -> str:
    if not key or "/" in key or key.startswith("."):
        raise ValueError(f"lease key {key!r} must be a plain file name")
    return f"{_base(store)}/_leases/{key}.json"


def read(store: Store, key: str) -> dict[str, Any] | None:
    """The lease record of ``key`` as stored, or None when there is none."""
    return _read(store, lease_path(store, key))


def describe(record: dict[str, Any]) -> str:
    """Who holds a lease, for the CLI: ``run <id> on <host> (pid N)``."""
    return f"run {record.get('owner', '?')} on {record.get('host', '?')} (pid {record.get('pid', '?')})"


def is_stale(record: dict[str, Any], now: float | None = None) -> bool:
    """Expired, or held by a process of this host that no longer exists."""
    if float(record.get("expires", 0.0)) <= (time.time() if now is None else now):
        return True
    if record.get("host") != socket.gethostname():
        return False  # another host's pid means nothing here: wait for expiry
    pid = int(record.get("pid", 0))
    started = _started(pid)
    return started is None or (record.get("pid_started") is not None and started > record["pid_started"])


def acquire(store: Store, key: str, *, owner: str, ttl_s: float = DEFAULT_TTL_S) -> Lease | None:
    """Take the lease of ``key`` for run ``owner``; None when another live holder has it."""
    path = lease_path(store, key)
    for _ in range(3):  # absent → create; stale → break, then create; a racing taker may win either step
        lease = Lease(store, key, owner, ttl_s)
        lease.expires = lease.acquired + ttl_s
        if _create(store, path, lease.record()):
            return lease
        current = read(store, key)
        if current is not None and not is_stale(current):
            return None
        if current is not None:
            _break(store, key, current)
    return None


@contextmanager
def held(store: Store, key: str, owner: str, ttl_s: float = DEFAULT_TTL_S) -> Iterator[Lease]:
    """Hold the lease of ``key`` (heartbeat included) for the block; ``LeaseHeld`` when another run has it."""
    lease = acquire(store, key, owner=owner, ttl_s=ttl_s)
    current = read(store, key) if lease is None else None
    if lease is None and current is None:  # its holder released it in between: one more try
        lease = acquire(store, key, owner=owner, ttl_s=ttl_s)
        current = read(store, key) if lease is None else None
    if lease is None:
        raise LeaseHeld(key, describe(current) if current else "another run")
    try:
        with lease.heartbeat():
            yield lease
    finally:
        lease.release()


def _break(store: Store, key: str, stale: dict[str, Any]) -> None:
    """Delete the stale lease ``stale`` if this taker wins its ``.break`` marker and it is unchanged."""
    token = str(stale.get("token", "none"))
    marker = f"{_base(store)}/_leases/{key}.{token}.break"
    claim = {"host": socket.gethostname(), "pid": os.getpid(), "pid_started": _started(os.getpid()), "at": time.time()}
    if not _create(store, marker, claim):
        other = _read(store, marker)
        if other is None or not _claim_stale(other, stale):
            return  # another taker is breaking it right now
        _remove(store, marker)  # that taker died mid-break: clear its claim, the next round retries
        return
    try:
        current = read(store, key)
        if current is not None and current.get("token") == token and is_stale(current):
            _remove(store, lease_path(store, key))
    finally:
        _remove(store, marker)


def _claim_stale(claim: dict[str, Any], lease: dict[str, Any]) -> bool:
    """A ``.break`` claim left by a taker that died (dead pid here, or older than the lease's ttl)."""
    age = time.time() - float(claim.get("at", 0.0))
    ttl = float(lease.get("expires", 0.0)) - float(lease.get("acquired", 0.0))
    return age > max(ttl, 1.0) or is_stale({**claim, "expires": float("inf")})


# -- the few filesystem operations a lease needs, local or fsspec ------------------------


def _base(store: Store) -> str:
    return url_to_fs(store.root)[1].rstrip("/")


def _fs(store: Store) -> fsspec.AbstractFileSystem:
    return store.fs


def _encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True).encode()


def _create(store: Store, path: str, record: dict[str, Any]) -> bool:
    """Write ``path`` whole if it does not exist; False when it already does."""
    fs = _fs(store)
    if not is_local(fs):
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        try:
            fs.pipe_file(path, _encode(record), mode="create")
        except FileExistsError:
            return False
        return True
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = _write_temporary(path, _encode(record))
    try:
        os.link(temporary, path)  # atomic create-if-absent of a complete file
        return True
    except FileExistsError:
        return False
    finally:
        os.remove(temporary)


def _overwrite(store: Store, path: str, record: dict[str, Any]) -> None:
    fs = _fs(store)
    if not is_local(fs):
        fs.pipe_file(path, _encode(record))  # one PUT: whole or not at all
        return
    os.replace(_write_temporary(path, _encode(record)), path)


def _write_temporary(path: str, data: bytes) -> str:
    temporary = temporary_path(os.path.dirname(path))
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return temporary


def _read(store: Store, path: str) -> dict[str, Any] | None:
    try:
        record = json.loads(_fs(store).cat_file(path))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _remove(store: Store, path: str) -> None:
    with suppress(FileNotFoundError):
        _fs(store).rm_file(path)  # one file: rm would read `[` in the root as a glob


def _started(pid: int) -> float | None:
    """When process ``pid`` of this host started (None if there is none): tells a reused pid from its holder."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None
