"""The registry on a local directory and on S3: immutability, aliases, crashes, races."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nba_forecast.storage.object_store import FileStore, S3Store
from nba_forecast.storage.registry import PromotionConflict, Registry, RegistryError

ROOT = Path(__file__).resolve().parents[2]


def model_dir(base: Path, name: str, files: int = 3, size: int = 1000) -> Path:
    directory = base / name
    for i in range(files):
        path = directory / ("components" if i % 2 else "") / f"part{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((name.encode() + bytes([i])) * size)
    (directory / "ensemble.json").write_text(json.dumps({"name": name}))
    return directory


@pytest.fixture(params=["file", "s3"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    if request.param == "file":
        return Registry(FileStore(tmp_path / "registry"))
    url, bucket, _ = request.getfixturevalue("s3_bucket")
    return Registry(S3Store(bucket, "registry", endpoint_url=url))


def test_register_is_idempotent_and_content_addressed(registry: Registry, tmp_path: Path) -> None:
    first = registry.register(
        model_dir(tmp_path, "a"), metrics={"mae": 4.47}, data_window={"seasons": [1996, 2012]}
    )
    again = registry.register(model_dir(tmp_path, "a"))
    assert again == first
    other = registry.register(model_dir(tmp_path, "b"), parent=first.version)
    assert other.version != first.version and other.parent == first.version
    assert [m.version for m in registry.versions()] == [first.version, other.version]
    assert first.metrics == {"mae": 4.47} and first.code_version
    pulled = registry.pull(first.version, tmp_path / "pulled")
    assert (pulled / "components" / "part1.bin").read_bytes() == (
        tmp_path / "a" / "components" / "part1.bin"
    ).read_bytes()


def test_register_errors(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="not a model directory"):
        registry.register(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RegistryError, match="empty"):
        registry.register(tmp_path / "empty")
    with pytest.raises(RegistryError, match="no version"):
        registry.register(model_dir(tmp_path, "a"), parent="0" * 16)
    with pytest.raises(RegistryError, match="not a version id"):
        registry.manifest("latest")


def test_promote_history_and_rollback(registry: Registry, tmp_path: Path) -> None:
    a = registry.register(model_dir(tmp_path, "a")).version
    b = registry.register(model_dir(tmp_path, "b")).version
    c = registry.register(model_dir(tmp_path, "c")).version
    registry.promote("production", a, reason="bootstrap")
    registry.promote("candidate", b, reason="retrained", report="reports/v-b.md")
    registry.promote("production", b, reason="won the A/B test", report="reports/ab.md")
    registry.promote("production", c, reason="recalibrated")
    assert registry.aliases() == {"production": c, "candidate": b}
    back = registry.rollback("production")
    assert (back.from_version, back.to_version) == (c, b)
    to_first = registry.rollback("production", to_seq=1)
    assert to_first.to_version == a and registry.resolve("production") == a
    history = registry.history("production")
    assert [e.seq for e in history] == [1, 3, 4, 5, 6]
    assert [e.to_version for e in history] == [a, b, c, b, a]
    assert history[1].report == "reports/ab.md"
    assert len(registry.history()) == 6


def test_promotion_errors(registry: Registry, tmp_path: Path) -> None:
    a = registry.register(model_dir(tmp_path, "a")).version
    with pytest.raises(RegistryError, match="no version"):
        registry.promote("production", "f" * 16, reason="x")
    with pytest.raises(RegistryError, match="bad alias"):
        registry.promote("Prod!", a, reason="x")
    with pytest.raises(RegistryError, match="reason"):
        registry.promote("production", a, reason=" ")
    with pytest.raises(RegistryError, match="no promotions"):
        registry.rollback("production")
    registry.promote("production", a, reason="first")
    with pytest.raises(RegistryError, match="no version before"):
        registry.rollback("production")
    with pytest.raises(PromotionConflict, match="not the expected"):
        registry.promote("production", a, reason="x", expected_from="0" * 16)


def test_concurrent_promotions_one_winner(registry: Registry, tmp_path: Path) -> None:
    versions = [registry.register(model_dir(tmp_path, f"m{i}")).version for i in range(6)]
    barrier = threading.Barrier(len(versions))
    outcomes: dict[str, str] = {}

    def promote(version: str) -> None:
        barrier.wait()
        try:
            registry.promote("production", version, reason="race", expected_from=None)
            outcomes[version] = "won"
        except PromotionConflict:
            outcomes[version] = "lost"

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [v for v, result in outcomes.items() if result == "won"]
    assert len(winners) == 1
    assert registry.resolve("production") == winners[0]
    assert [e.to_version for e in registry.history()] == winners


def test_crash_after_swap_before_log_is_repaired(tmp_path: Path) -> None:
    registry = Registry(FileStore(tmp_path / "registry"))
    a = registry.register(model_dir(tmp_path, "a")).version
    registry.promote("production", a, reason="first")
    (tmp_path / "registry" / "promotions" / "00000001.json").unlink()  # lost with the crash
    assert [e.seq for e in registry.history()] == [1]


CRASH_SCRIPT = """
import sys
from pathlib import Path
from nba_forecast.storage.registry import Registry
from nba_forecast.storage.object_store import FileStore
registry = Registry(FileStore(Path(sys.argv[1])))
manifest = registry.register(Path(sys.argv[2]))
for i in range(1000):
    registry.promote("production", manifest.version, reason=f"loop {i}")
"""


@pytest.mark.slow
def test_killed_registrations_leave_a_consistent_registry(tmp_path: Path) -> None:
    store = tmp_path / "registry"
    rng = random.Random(7)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = 0
    for attempt in range(25):
        directory = model_dir(tmp_path / "models", f"m{attempt % 6}", files=40, size=20_000)
        process = subprocess.Popen(
            [sys.executable, "-c", CRASH_SCRIPT, str(store), str(directory)], env=env
        )
        time.sleep(rng.uniform(0.3, 1.2))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait()
        registry = Registry(FileStore(store))
        for manifest in registry.versions():
            registry.verify(manifest.version)  # every visible version is whole
        history = registry.history()
        assert [e.seq for e in history] == list(range(1, len(history) + 1))
        if history:
            assert registry.resolve("production") == history[-1].to_version
    assert killed >= 10
    # every model registers cleanly afterwards, each exactly once
    registry = Registry(FileStore(store))
    for i in range(6):
        registry.register(model_dir(tmp_path / "models", f"m{i}", files=40, size=20_000))
    assert len(registry.versions()) == 6


def test_identical_concurrent_promotions_have_one_winner(
    registry: Registry, tmp_path: Path
) -> None:
    """Six operators promote the same version at once: one wins, the others conflict (on S3
    an identical document must not pass for the loser's own retried write)."""
    version = registry.register(model_dir(tmp_path, "same")).version
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def promote() -> None:
        barrier.wait()
        try:
            registry.promote("production", version, reason="race", expected_from=None)
            outcomes.append("won")
        except PromotionConflict:
            outcomes.append("lost")

    threads = [threading.Thread(target=promote) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["lost"] * 5 + ["won"]
    assert len(registry.history("production")) == 1


def test_a_version_with_an_altered_file_is_never_promoted(
    registry: Registry, tmp_path: Path
) -> None:
    good = registry.register(model_dir(tmp_path, "good")).version
    registry.promote("production", good, reason="first")
    bad = registry.register(model_dir(tmp_path, "bad")).version
    key = f"versions/{bad}/files/ensemble.json"
    data = registry.store.get(key)
    registry.store.put(key, data[:-1] + bytes([data[-1] ^ 1]))  # one byte changed
    with pytest.raises(RegistryError, match=f"version {bad}: ensemble.json is corrupt"):
        registry.promote("production", bad, reason="should fail")
    assert registry.resolve("production") == good


@pytest.mark.parametrize("alias", ["production\n", "Production", "prod uction", "-x", ""])
def test_alias_names_are_checked_whole(registry: Registry, tmp_path: Path, alias: str) -> None:
    version = registry.register(model_dir(tmp_path, "a")).version
    with pytest.raises(RegistryError, match="bad alias"):
        registry.promote(alias, version, reason="x")


def test_processes_pulling_into_one_cache_never_see_half_a_version(tmp_path: Path) -> None:
    """The workers of a server pull into one model cache at once: each sees the whole
    version or nothing, and a partial copy left by a crash is replaced."""
    import multiprocessing

    registry = Registry(FileStore(tmp_path / "registry"))
    version = registry.register(model_dir(tmp_path, "big", files=6, size=400_000)).version
    cache = tmp_path / "cache" / version
    cache.mkdir(parents=True)
    (cache / "ensemble.json").write_text("{")  # a crash mid-copy left this
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.starmap(
            _pull_and_read, [(str(tmp_path / "registry"), version, str(cache))] * 8
        )
    expected = {
        p.relative_to(tmp_path / "big").as_posix()
        for p in (tmp_path / "big").rglob("*")
        if p.is_file()
    }
    assert all(found == expected for found in results)
    assert not [p for p in cache.parent.iterdir() if p.name.startswith(".")]  # no leftovers


def _pull_and_read(root: str, version: str, cache: str) -> set[str]:
    registry = Registry(FileStore(Path(root)))
    pulled = registry.pull(version, Path(cache))
    json.loads((pulled / "ensemble.json").read_text())  # whole, not cut
    return {p.relative_to(pulled).as_posix() for p in pulled.rglob("*") if p.is_file()}
