"""One object-store interface over a local directory (``file://``) and S3 (``s3://``).

Both give: get, put, list, put-if-absent and compare-and-swap on an entity tag (etag), the
primitives the registry builds immutability and atomic alias moves on.

* ``FileStore``: writes go to a temporary file and are renamed into place (readers never see
  half a file); put-if-absent is a hard link (atomic create); compare-and-swap holds an
  exclusive ``flock`` on the store, so it is safe across processes on one machine.
* ``S3Store``: boto3 with path-style addressing and ``endpoint_url`` (MinIO and friends),
  S3 conditional writes (``If-None-Match: *``, ``If-Match: <etag>``), and botocore's
  standard retry mode (exponential backoff on throttling, 5xx and timeouts). A conditional
  write retried after a lost response may meet its own earlier success: it is recognised by
  content, so retries stay idempotent.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


class ObjectNotFound(KeyError):
    """No object under that key."""


class PreconditionFailed(RuntimeError):
    """A conditional write lost: the object exists (put-if-absent) or changed (CAS)."""


def content_etag(data: bytes) -> str:
    """The etag a single-part upload gets: the MD5 of the content, quoted as S3 does."""
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"bad object key {key!r}: use 'a/b/c' with no empty, '.' or '..' parts")
    return key


class ObjectStore(ABC):
    url: str

    @abstractmethod
    def get_with_etag(self, key: str) -> tuple[bytes, str]: ...

    @abstractmethod
    def put(self, key: str, data: bytes) -> str:
        """Write (or overwrite); returns the new etag."""

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Write only if no object exists; True if this call wrote it."""

    @abstractmethod
    def compare_and_swap(self, key: str, data: bytes, expected_etag: str | None) -> str:
        """Write only if the current etag is ``expected_etag`` (None: the key must not
        exist). Returns the new etag; raises ``PreconditionFailed`` otherwise."""

    @abstractmethod
    def root_exists(self) -> bool:
        """Whether the store itself (folder, bucket) is there."""

    @abstractmethod
    def top_names(self, limit: int = 100) -> set[str]:
        """Up to ``limit`` names at the store's top level (files and folders), cheaply."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix``, sorted."""

    def get(self, key: str) -> bytes:
        return self.get_with_etag(key)[0]

    def exists(self, key: str) -> bool:
        try:
            self.get_with_etag(key)
        except ObjectNotFound:
            return False
        return True


class FileStore(ObjectStore):
    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def root_exists(self) -> bool:
        return self.root.is_dir()

    def top_names(self, limit: int = 100) -> set[str]:
        names: set[str] = set()
        with os.scandir(self.root) as entries:
            for entry in entries:
                names.add(entry.name)
                if len(names) >= limit:
                    break
        return names

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        try:
            data = self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"{self.url}/{key}") from None
        return data, content_etag(data)

    def _temporary(self, path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return Path(name)

    def put(self, key: str, data: bytes) -> str:
        path = self._path(key)
        os.replace(self._temporary(path, data), path)
        return content_etag(data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        tmp = self._temporary(path, data)
        try:
            os.link(tmp, path)  # atomic: fails if the key exists
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".cas.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def compare_and_swap(self, key: str, data: bytes, expected_etag: str | None) -> str:
        with self._locked():
            try:
                current: str | None = self.get_with_etag(key)[1]
            except ObjectNotFound:
                current = None
            if current != expected_etag:
                raise PreconditionFailed(
                    f"{self.url}/{key}: expected etag {expected_etag}, found {current}"
                )
            return self.put(key, data)

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.exists():
            return []
        keys = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)


class S3Store(ObjectStore):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        max_attempts: int = 8,
        timeout_s: float = 10.0,
        client: Any = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        config = Config(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
        )
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url, config=config)

    def root_exists(self) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if self._code(error) in ("NoSuchBucket", "404", "NotFound"):
                return False
            raise
        return True

    def top_names(self, limit: int = 100) -> set[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        page = self.client.list_objects_v2(
            Bucket=self.bucket, Prefix=base, Delimiter="/", MaxKeys=limit
        )
        names = {item["Key"][len(base) :] for item in page.get("Contents", [])}
        names |= {
            item["Prefix"][len(base) :].rstrip("/") for item in page.get("CommonPrefixes", [])
        }
        return names

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @staticmethod
    def _code(error: Exception) -> str:
        response = getattr(error, "response", {}) or {}
        return str(response.get("Error", {}).get("Code", ""))

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if self._code(error) in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFound(f"{self.url}/{key}") from None
            raise
        return response["Body"].read(), response["ETag"]

    def put(self, key: str, data: bytes) -> str:
        response = self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return str(response["ETag"])

    def _conditional_put(self, key: str, data: bytes, **condition: str) -> str:
        from botocore.exceptions import ClientError

        try:
            response = self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, **condition
            )
        except ClientError as error:
            if self._code(error) not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise
            # a retry after a lost response meets its own write: same content, same etag
            try:
                current, etag = self.get_with_etag(key)
            except ObjectNotFound:
                current, etag = None, None
            if current == data:
                return str(etag)
            raise PreconditionFailed(f"{self.url}/{key}: {condition}") from None
        return str(response["ETag"])

    def put_if_absent(self, key: str, data: bytes) -> bool:
        try:
            existing = self.get(key)
        except ObjectNotFound:
            existing = None
        if existing is not None:
            return False
        try:
            self._conditional_put(key, data, IfNoneMatch="*")
        except PreconditionFailed:
            return False
        return True

    def compare_and_swap(self, key: str, data: bytes, expected_etag: str | None) -> str:
        if expected_etag is None:
            return self._conditional_put(key, data, IfNoneMatch="*")
        return self._conditional_put(key, data, IfMatch=expected_etag)

    def list(self, prefix: str = "") -> list[str]:
        # a prefix is not a key: it may end with "/" (or be empty)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        keys = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            for item in page.get("Contents", []):
                key = item["Key"]
                keys.append(key[len(self.prefix) + 1 :] if self.prefix else key)
        return sorted(keys)


def open_store(url: str, *, endpoint_url: str | None = None) -> ObjectStore:
    """``file:///abs/dir``, a plain path, or ``s3://bucket/prefix`` (``endpoint_url``: an
    S3-compatible server such as MinIO; default AWS)."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return FileStore(Path(parsed.path if parsed.scheme else url))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"bad store URL {url!r}: expected s3://bucket/prefix")
        return S3Store(parsed.netloc, parsed.path, endpoint_url=endpoint_url)
    raise ValueError(f"unsupported store URL {url!r}: use file:// or s3://")
