"""The object store against a local directory and a real S3 server over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from nba_forecast.storage.object_store import (
    FileStore,
    ObjectNotFound,
    ObjectStore,
    PreconditionFailed,
    S3Store,
    content_etag,
    open_store,
)


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "file":
        return FileStore(tmp_path / "store")
    url, bucket, _ = request.getfixturevalue("s3_bucket")
    return S3Store(bucket, "prefix/x", endpoint_url=url)


def test_put_get_list(store: ObjectStore) -> None:
    etag = store.put("a/b.json", b"{}")
    assert etag == content_etag(b"{}")
    assert store.get_with_etag("a/b.json") == (b"{}", etag)
    store.put("a/c.json", b"1")
    store.put("z.txt", b"2")
    assert store.list() == ["a/b.json", "a/c.json", "z.txt"]
    assert store.list("a/") == ["a/b.json", "a/c.json"]
    assert store.exists("z.txt") and not store.exists("nope")
    with pytest.raises(ObjectNotFound):
        store.get("missing/key")


def test_put_if_absent(store: ObjectStore) -> None:
    assert store.put_if_absent("k", b"first") is True
    assert store.put_if_absent("k", b"second") is False
    assert store.get("k") == b"first"


def test_compare_and_swap(store: ObjectStore) -> None:
    etag = store.compare_and_swap("doc", b"v1", None)
    with pytest.raises(PreconditionFailed):
        store.compare_and_swap("doc", b"v2", None)  # must not exist
    with pytest.raises(PreconditionFailed):
        store.compare_and_swap("doc", b"v2", content_etag(b"other"))
    new = store.compare_and_swap("doc", b"v2", etag)
    assert store.get_with_etag("doc") == (b"v2", new)
    with pytest.raises(PreconditionFailed):
        store.compare_and_swap("doc", b"v3", etag)  # stale etag


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "./a"])
def test_bad_keys(store: ObjectStore, key: str) -> None:
    with pytest.raises(ValueError, match="bad object key"):
        store.put(key, b"x")


def test_s3_retries_throttling_and_5xx(s3_bucket) -> None:  # type: ignore[no-untyped-def]
    url, bucket, faults = s3_bucket
    store = S3Store(bucket, endpoint_url=url, max_attempts=5)
    faults.before = 3
    before = faults.requests
    store.put("k", b"v")
    assert faults.requests - before == 4  # three 503s, then success
    faults.before = 2
    assert store.get("k") == b"v"


def test_s3_gives_up_after_max_attempts(s3_bucket) -> None:  # type: ignore[no-untyped-def]
    url, bucket, faults = s3_bucket
    store = S3Store(bucket, endpoint_url=url, max_attempts=2)
    faults.before = 10
    with pytest.raises(ClientError, match="SlowDown"):
        store.put("k", b"v")
    faults.before = 0


def test_s3_conditional_write_survives_a_lost_response(s3_bucket) -> None:  # type: ignore[no-untyped-def]
    url, bucket, faults = s3_bucket
    store = S3Store(bucket, endpoint_url=url)
    faults.after = 1  # the write happens, its response is lost, botocore retries
    assert store.put_if_absent("once", b"payload") is True
    assert store.get("once") == b"payload"
    etag = store.get_with_etag("once")[1]
    faults.after = 1
    store.compare_and_swap("once", b"payload-2", etag)  # the retry meets its own write
    assert store.get("once") == b"payload-2"


def test_open_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path.as_uri()), FileStore)
    assert isinstance(open_store(str(tmp_path)), FileStore)
    for bad in ["ftp://host/x", "s3://"]:
        with pytest.raises(ValueError):
            open_store(bad)
