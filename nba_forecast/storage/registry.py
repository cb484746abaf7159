"""The model registry: immutable versions, aliases moved by compare-and-swap, and an
append-only promotion log.

Layout in the object store:

* ``versions/<id>/files/...``: the model directory (ensemble, components, conformal state);
* ``versions/<id>/manifest.json``: content hash, file hashes, parent, data window, code
  version, metrics, created time. Written LAST and only if absent: a version exists exactly
  when its manifest does, so a crash while registering leaves nothing visible, and the
  same content always gives the same id (registering twice is a no-op);
* ``versions/<id>/reports/<name>.json``: what was measured of a version after it was
  registered (its validation); outside the manifest, which never changes;
* ``aliases.json``: ``{"seq": n, "aliases": {name: {"version", "seq"}}, "last": entry}``,
  replaced only by compare-and-swap, so of two concurrent promotions exactly one wins;
* ``promotions/<seq>.json``: one entry per alias move (from, to, when, why, report). The
  winner writes it after its swap; if it crashed in between, the entry is rebuilt from
  ``aliases.json["last"]`` on the next read or write.

Rollback re-promotes a version an earlier entry names.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nba_forecast
from nba_forecast.provenance import code_version
from nba_forecast.storage.object_store import ObjectNotFound, ObjectStore, PreconditionFailed

logger = logging.getLogger(__name__)

ALIASES_KEY = "aliases.json"
ALIAS_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}")  # used with fullmatch
ID_LENGTH = 16
VERSION_PATTERN = re.compile(f"[0-9a-f]{{{ID_LENGTH}}}")
ANY_VERSION = object()  # promote without checking what the alias holds now


def _holds(directory: Path, files: dict[str, str]) -> bool:
    """Whether ``directory`` holds exactly these files with these hashes."""
    try:
        return all(
            hashlib.sha256((directory / relative).read_bytes()).hexdigest() == sha
            for relative, sha in files.items()
        )
    except OSError:
        return False


class RegistryError(RuntimeError):
    """A registry operation that cannot be done as asked."""


class PromotionConflict(RegistryError):
    """Someone else moved the aliases between our read and our write."""


@dataclass(frozen=True)
class PromotionEntry:
    seq: int
    alias: str
    from_version: str | None
    to_version: str
    at: str
    reason: str
    report: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PromotionEntry:
        return cls(**data)


@dataclass(frozen=True)
class VersionManifest:
    """What the registry knows of one version; ``data_window`` says which games it saw
    (``trained_to``: the last training game's date; ``recalibrated_to``: the end of the
    recalibration window), ``metrics`` what it measured when registered, ``made_by`` the
    lifecycle step that made it (which decides whether its A/B test may supersede another)."""

    version: str
    files: dict[str, str]
    parent: str | None = None
    data_window: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    code_version: str = ""
    created_at: str = ""
    made_by: str = ""

    @property
    def trained_to(self) -> str | None:
        value = self.data_window.get("trained_to")
        return None if value is None else str(value)

    @property
    def recalibrated_to(self) -> str | None:
        value = self.data_window.get("recalibrated_to")
        return None if value is None else str(value)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> VersionManifest:
        data = json.loads(text)
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


def tree_files(directory: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``directory``."""
    if not directory.is_dir():
        raise RegistryError(f"{directory}: not a model directory")
    files = {
        path.relative_to(directory).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }
    if not files:
        raise RegistryError(f"{directory}: empty model directory")
    return files


def check_version_id(version: str) -> str:
    """A version id, whole: ``ID_LENGTH`` hex digits (not an alias)."""
    if not VERSION_PATTERN.fullmatch(version):
        raise RegistryError(f"{version!r} is not a version id ({ID_LENGTH} hex digits)")
    return version


def check_alias(alias: str) -> str:
    """An alias name, whole: a lower-case letter, then letters, digits, - or _ (32 at most)."""
    if not ALIAS_PATTERN.fullmatch(alias):
        raise RegistryError(f"bad alias {alias!r}: lower-case letters, digits, - and _")
    return alias


def content_id(files: dict[str, str]) -> str:
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    return digest[:ID_LENGTH]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Registry:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @classmethod
    def open(cls, url: str, *, endpoint_url: str | None = None) -> Registry:
        """The registry at ``url`` (file:// or s3://; ``endpoint_url`` for MinIO)."""
        from nba_forecast.storage.object_store import open_store

        return cls(open_store(url, endpoint_url=endpoint_url))

    # -- versions ------------------------------------------------------------------------
    def register(
        self,
        model_dir: Path,
        *,
        parent: str | None = None,
        data_window: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        made_by: str = "",
    ) -> VersionManifest:
        """Upload a model directory as an immutable version; returns its manifest. The same
        content always gives the same version (no "already exists" failure)."""
        files = tree_files(model_dir)
        version = content_id(files)
        existing = self._manifest_or_none(version)
        if existing is not None:
            return existing
        if parent is not None:
            self.manifest(parent)  # the parent must exist
        for relative in files:
            self.store.put(
                f"versions/{version}/files/{relative}", (model_dir / relative).read_bytes()
            )
        manifest = VersionManifest(
            version,
            files,
            parent,
            data_window or {},
            metrics or {},
            f"{nba_forecast.__version__} ({code_version()})",
            _now(),
            made_by,
        )
        body = manifest.to_json().encode()
        if not self.store.put_if_absent(f"versions/{version}/manifest.json", body):
            return self.manifest(version)  # registered concurrently: same content
        logger.info("registered version %s (%d files)", version, len(files))
        return manifest

    def _manifest_or_none(self, version: str) -> VersionManifest | None:
        try:
            return self.manifest(version)
        except RegistryError:
            return None

    def manifest(self, version: str) -> VersionManifest:
        check_version_id(version)
        try:
            return VersionManifest.from_json(self.store.get(f"versions/{version}/manifest.json"))
        except ObjectNotFound:
            raise RegistryError(f"no version {version} in {self.store.url}") from None

    def file(self, version: str, relative: str) -> bytes:
        """One file of a version, checked against its manifest's hash."""
        manifest = self.manifest(version)
        if relative not in manifest.files:
            raise RegistryError(f"version {version} has no file {relative}")
        try:
            data = self.store.get(f"versions/{version}/files/{relative}")
        except ObjectNotFound:
            raise RegistryError(f"version {version}: {relative} is missing") from None
        if hashlib.sha256(data).hexdigest() != manifest.files[relative]:
            raise RegistryError(f"version {version}: {relative} is corrupt (hash mismatch)")
        return data

    def attach_report(self, version: str, name: str, report: dict[str, Any]) -> None:
        """Keep ``report`` (JSON) beside an existing version under ``name``; a later report
        of the same name replaces it (e.g. the version validated again)."""
        check_alias(name)
        self.manifest(version)  # the version must exist
        body = json.dumps(report, indent=2, sort_keys=True).encode()
        self.store.put(f"versions/{version}/reports/{name}.json", body)

    def report(self, version: str, name: str) -> dict[str, Any] | None:
        """The report kept beside ``version`` under ``name``; None when there is none."""
        check_version_id(version)
        check_alias(name)
        try:
            data: dict[str, Any] = json.loads(
                self.store.get(f"versions/{version}/reports/{name}.json")
            )
        except ObjectNotFound:
            return None
        return data

    def versions(self) -> list[VersionManifest]:
        """Every registered version, oldest first."""
        manifests = [
            VersionManifest.from_json(self.store.get(key))
            for key in self.store.list("versions/")
            if key.endswith("/manifest.json")
        ]
        return sorted(manifests, key=lambda m: (m.created_at, m.version))

    def resolve(self, name: str) -> str:
        """A version id, or the version an alias points at."""
        aliases = self.aliases()
        if name in aliases:
            return aliases[name]
        if not VERSION_PATTERN.fullmatch(name):
            known = ", ".join(sorted(aliases)) or "none yet"
            raise RegistryError(f"no alias or version {name!r} (aliases: {known})")
        return self.manifest(name).version

    def pull(self, name: str, destination: Path) -> Path:
        """Download a version (or an alias's version) and check every file's hash."""
        version = self.resolve(name)
        manifest = self.manifest(version)
        if _holds(destination, manifest.files):
            return destination
        # written beside it, then renamed into place: processes pulling into one cache (the
        # workers of a server) never see, or load, a half-written version
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
        try:
            for relative, sha in manifest.files.items():
                data = self.store.get(f"versions/{version}/files/{relative}")
                if hashlib.sha256(data).hexdigest() != sha:
                    raise RegistryError(f"version {version}: {relative} is corrupt (hash mismatch)")
                target = staging / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            # one process at a time swaps copies: a complete copy, once in place, is never
            # moved again (another process may be reading it)
            # (the lock is the cache folder itself: a lock file would be left behind)
            folder = os.open(destination.parent, os.O_RDONLY)
            try:
                fcntl.flock(folder, fcntl.LOCK_EX)
                if _holds(destination, manifest.files):
                    return destination
                if destination.exists():  # an old, partial copy: move it out of the way
                    stale = Path(
                        tempfile.mkdtemp(prefix=f".{destination.name}.old.", dir=destination.parent)
                    )
                    os.replace(destination, stale / "version")
                    shutil.rmtree(stale, ignore_errors=True)
                os.rename(staging, destination)
            finally:
                os.close(folder)  # releases the lock
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return destination

    def verify(self, version: str) -> None:
        """Raise if the manifest does not match the version id, or any file of the version
        is missing or altered."""
        manifest = self.manifest(version)
        if content_id(manifest.files) != version:
            raise RegistryError(f"version {version}: its manifest does not match its id")
        for relative, sha in manifest.files.items():
            try:
                data = self.store.get(f"versions/{version}/files/{relative}")
            except ObjectNotFound:
                raise RegistryError(f"version {version}: {relative} is missing") from None
            if hashlib.sha256(data).hexdigest() != sha:
                raise RegistryError(f"version {version}: {relative} is corrupt")

    # -- aliases and the promotion log -----------------------------------------------------
    def _aliases_doc(self) -> tuple[dict[str, Any], str | None]:
        try:
            data, etag = self.store.get_with_etag(ALIASES_KEY)
        except ObjectNotFound:
            return {"seq": 0, "aliases": {}, "last": None}, None
        return json.loads(data), etag

    def aliases(self) -> dict[str, str]:
        doc, _ = self._aliases_doc()
        return {name: value["version"] for name, value in doc["aliases"].items()}

    def _repair_log(self, doc: dict[str, Any]) -> None:
        """Write the last promotion's entry if its writer crashed after the swap."""
        last = doc.get("last")
        if last is not None:
            body = json.dumps(last, indent=2, sort_keys=True).encode()
            self.store.put_if_absent(f"promotions/{last['seq']:08d}.json", body)

    def promote(
        self,
        alias: str,
        version: str,
        *,
        reason: str,
        report: str | None = None,
        expected_from: object = ANY_VERSION,
    ) -> PromotionEntry:
        """Point ``alias`` at ``version``. ``expected_from`` (when given) is the version the
        caller believes the alias holds now; a different one is a conflict. Two concurrent
        promotions: one wins, the other raises ``PromotionConflict``."""
        check_alias(alias)
        if not reason.strip():
            raise RegistryError("a promotion needs a reason")
        self.verify(version)  # exists, and every file is what its manifest says
        doc, etag = self._aliases_doc()
        self._repair_log(doc)
        current = doc["aliases"].get(alias, {}).get("version")
        if expected_from is not ANY_VERSION and current != expected_from:
            raise PromotionConflict(
                f"alias {alias} points at {current}, not the expected {expected_from}"
            )
        entry = PromotionEntry(doc["seq"] + 1, alias, current, version, _now(), reason, report)
        new_doc = {
            "seq": entry.seq,
            "aliases": {**doc["aliases"], alias: {"version": version, "seq": entry.seq}},
            "last": entry.__dict__,
            # this write's own mark: two identical promotions racing are two different
            # documents, so the loser cannot take the winner's write for its own retry
            "writer": uuid.uuid4().hex,
        }
        try:
            self.store.compare_and_swap(
                ALIASES_KEY, json.dumps(new_doc, indent=2, sort_keys=True).encode(), etag
            )
        except PreconditionFailed:
            raise PromotionConflict(
                f"the aliases changed while promoting {version} to {alias}; "
                "read `nba-forecast registry history` and try again"
            ) from None
        self._repair_log(new_doc)
        logger.info("promoted %s: %s -> %s (%s)", alias, current, version, reason)
        return entry

    def history(self, alias: str | None = None) -> list[PromotionEntry]:
        doc, _ = self._aliases_doc()
        self._repair_log(doc)
        entries = [
            PromotionEntry.from_json(json.loads(self.store.get(key)))
            for key in self.store.list("promotions/")
        ]
        # entries past the aliases' seq cannot exist: they are only written after the swap
        entries = [e for e in entries if e.seq <= doc["seq"]]
        return [e for e in entries if alias is None or e.alias == alias]

    def recent_promotions(self, limit: int) -> list[PromotionEntry]:
        """The last ``limit`` entries of the promotion log, oldest first: read only (unlike
        ``history``, no repair is written), and only those entries are fetched."""
        keys = self.store.list("promotions/")[-limit:] if limit > 0 else []
        return [PromotionEntry.from_json(json.loads(self.store.get(key))) for key in keys]

    def rollback(
        self, alias: str, *, to_seq: int | None = None, reason: str | None = None
    ) -> PromotionEntry:
        """Re-promote an earlier version: by default the one before the alias's last move;
        with ``to_seq``, the version promotion ``to_seq`` installed."""
        entries = self.history(alias)
        if not entries:
            raise RegistryError(f"alias {alias} has no promotions to roll back")
        if to_seq is None:
            last = entries[-1]
            if last.from_version is None:
                raise RegistryError(f"alias {alias} had no version before promotion #{last.seq}")
            target, source = last.from_version, last.seq
        else:
            match = [e for e in entries if e.seq == to_seq]
            if not match:
                raise RegistryError(f"no promotion #{to_seq} of alias {alias}")
            target, source = match[0].to_version, to_seq
        return self.promote(
            alias,
            target,
            reason=reason or f"rollback (re-promotes the version of #{source})",
            expected_from=entries[-1].to_version,
        )
