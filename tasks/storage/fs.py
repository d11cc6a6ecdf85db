"""fsspec helpers shared by the stages that read sources and write outputs.

Object stores are configured only by the standard AWS settings, which botocore reads
itself (checked with s3fs 2026.9 / botocore 1.43, AWS_ENDPOINT_URL included):
``AWS_ACCESS_KEY_ID`` + ``AWS_SECRET_ACCESS_KEY`` (or ``AWS_PROFILE``), ``AWS_ENDPOINT_URL``
for an S3-compatible server (MinIO, Ceph, moto), ``AWS_DEFAULT_REGION``, and
``AWS_MAX_ATTEMPTS`` / ``AWS_RETRY_MODE`` for botocore's own retries. Nothing is hard-coded.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem


class StorageError(Exception):
    """An object-store source or output root cannot be used at all (credentials, bucket, endpoint).

    Permanent for this run: retrying will not help, so it is reported once, before anything is written.
    """


_GLOB_CHARS = re.compile(r"([\[\]*?])")


def glob_escape(path: str) -> str:
    """``path`` as a glob that matches only itself: ``[``, ``]``, ``*`` and ``?`` each in brackets.

    DuckDB's globbing and fsspec's both read ``[[]`` as a literal ``[`` (checked for each
    character in tests/test_path_quoting.py).
    """
    return _GLOB_CHARS.sub(r"[\1]", path)


def url_to_fs(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and path of ``url`` (a local path or any fsspec URL).

    A local path (anything without ``://``, or starting with ``/``) is taken exactly as
    written: fsspec would read ``a::b.mp4`` as the URL chain ``a`` → ``b.mp4``. Only URLs
    with a protocol go through fsspec's parsing (``s3://…``, ``simplecache::s3://…``).
    """
    if url.startswith("/") or "://" not in url:
        return LocalFileSystem(), os.path.abspath(url)
    return fsspec.core.url_to_fs(url)


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    """True for the local filesystem, where rename is atomic and paths are plain paths."""
    return bool({"file", "local"} & _protocols(fs))


def is_object_store(fs: fsspec.AbstractFileSystem) -> bool:
    """S3 and its kin, where the first path component is a bucket."""
    return bool({"s3", "s3a", "gs", "gcs", "abfs", "az"} & _protocols(fs))


def is_s3(fs: fsspec.AbstractFileSystem) -> bool:
    """S3 (s3fs), whose writes take PutObject's arguments (ContentType, IfNoneMatch)."""
    return bool({"s3", "s3a"} & _protocols(fs))


def check_root(url: str) -> None:
    """Raise a one-line ``StorageError`` when the bucket of an object-store URL is not usable.

    One HEAD request on the bucket: it fails fast on missing credentials, an unknown
    bucket or an endpoint that does not answer. Local paths are left to the caller.
    """
    fs, path = url_to_fs(url)
    if not is_object_store(fs):
        return
    bucket = path.split("/", 1)[0]
    try:
        fs.info(bucket)
    except Exception as err:  # translated into one line that says what to fix
        raise storage_error(err, url) from err


def storage_error(err: BaseException, url: str) -> StorageError:
    """What went wrong with ``url``, in one line that names the setting to fix."""
    from botocore.exceptions import (
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    bucket = url.split("://", 1)[-1].split("/", 1)[0]
    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return StorageError(
            f"no credentials for {url}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
        )
    if isinstance(err, EndpointConnectionError | ConnectTimeoutError):
        return StorageError(f"cannot reach the object store at {endpoint()} for {url}: is AWS_ENDPOINT_URL right?")
    if isinstance(err, FileNotFoundError):
        return StorageError(f"bucket not found: {bucket} (for {url}); create it or fix the URL")
    if isinstance(err, PermissionError):
        return StorageError(f"access denied to bucket {bucket} (for {url}): check the credentials' permissions")
    first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return StorageError(f"cannot use {url}: {first_line}")


def endpoint() -> str:
    """The S3 endpoint botocore will use, for messages."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "the AWS default endpoint"


def _protocols(fs: fsspec.AbstractFileSystem) -> set[str]:
    return {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)


def probe_writable(folder: str | os.PathLike[str]) -> None:
    """Create the local ``folder`` and write and remove a probe file in it; OSError if that fails.

    Run before any work, so an unwritable output root or export folder fails in a second, not
    after the first video (the callers turn the OSError into their own one-line error).
    """
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path, prefix=".affectflow-probe-"):
        pass
