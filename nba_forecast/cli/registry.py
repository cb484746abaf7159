"""``nba-forecast registry``: versions, aliases, the promotion log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nba_forecast.cli.console import fail, out
from nba_forecast.storage.registry import Registry, RegistryError, check_alias

registry_app = typer.Typer(
    help="Model registry: versions, aliases, promotion log.", no_args_is_help=True
)


def _registry(create: bool = False) -> Registry:
    """The configured registry (--registry-url, NBA_FORECAST_REGISTRY_URL, the profile)."""
    from nba_forecast.cli.options import settings_or_fail
    from nba_forecast.lifecycle.deployment import open_registry

    try:
        return open_registry(settings_or_fail(), create=create)
    except ValueError as error:
        raise fail(str(error)) from None


def _registry_call(call):  # type: ignore[no-untyped-def]
    """Run a registry operation; its errors become one clear line and exit code 2."""
    try:
        return call()
    except (RegistryError, ValueError, OSError) as error:
        raise fail(str(error)) from None


@registry_app.command("register")
def registry_register(
    model_dir: Annotated[Path, typer.Argument(help="a saved model directory")],
    parent: Annotated[
        str | None, typer.Option(help="the version this one was derived from")
    ] = None,
    metrics: Annotated[Path | None, typer.Option(help="JSON file of metrics to record")] = None,
    create: Annotated[
        bool, typer.Option("--create", help="make the registry if it does not exist")
    ] = False,
) -> None:
    """Register a model directory as an immutable version (idempotent)."""
    registry = _registry(create)
    values = None
    if metrics is not None:
        try:
            values = json.loads(metrics.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise fail(f"{metrics}: not JSON metrics ({error})") from None
    manifest = _registry_call(lambda: registry.register(model_dir, parent=parent, metrics=values))
    out.print(
        f"version {manifest.version} ({len(manifest.files)} files, created {manifest.created_at})",
        highlight=False,
    )


@registry_app.command("list")
def registry_list() -> None:
    """Every version, oldest first, with the aliases that point at it."""
    registry = _registry()
    versions = _registry_call(registry.versions)
    aliases = _registry_call(registry.aliases)
    table = Table(title=f"registry {registry.store.url}")
    for column in ("version", "created", "parent", "aliases", "files"):
        table.add_column(column)
    for m in versions:
        names = ", ".join(sorted(a for a, v in aliases.items() if v == m.version))
        table.add_row(m.version, m.created_at, m.parent or "", names, str(len(m.files)))
    out.print(table)


@registry_app.command("show")
def registry_show(name: Annotated[str, typer.Argument(help="version id or alias")]) -> None:
    """A version's manifest (JSON)."""
    registry = _registry()
    manifest = _registry_call(lambda: registry.manifest(registry.resolve(name)))
    out.print_json(manifest.to_json())


@registry_app.command("promote")
def registry_promote(
    version: Annotated[str, typer.Argument(help="version id (or an alias, to copy it)")],
    alias: Annotated[str, typer.Option(help="alias to move")] = "production",
    reason: Annotated[str, typer.Option(help="why (kept in the promotion log)")] = "",
    report: Annotated[str | None, typer.Option(help="validation report reference")] = None,
) -> None:
    """Point an alias at a version (compare-and-swap) and log the move."""
    if not reason.strip():
        raise fail("--reason is required: the promotion log keeps why every move happened")
    registry = _registry()
    entry = _registry_call(
        lambda: registry.promote(
            check_alias(alias), registry.resolve(version), reason=reason, report=report
        )
    )
    out.print(
        f"#{entry.seq} {alias}: {entry.from_version or '-'} -> {entry.to_version}", highlight=False
    )


@registry_app.command("rollback")
def registry_rollback(
    alias: Annotated[str, typer.Option(help="alias to roll back")] = "production",
    to: Annotated[
        int | None,
        typer.Option(
            help="re-promote the version of this log entry (default: the version before the "
            "last move)"
        ),
    ] = None,
) -> None:
    """Roll an alias back by re-promoting an earlier version (logged like any move)."""
    registry = _registry()
    entry = _registry_call(lambda: registry.rollback(alias, to_seq=to))
    out.print(
        f"#{entry.seq} {alias}: {entry.from_version} -> {entry.to_version} ({entry.reason})",
        highlight=False,
    )


@registry_app.command("history")
def registry_history(
    alias: Annotated[str | None, typer.Option(help="only this alias")] = None,
) -> None:
    """The promotion log, oldest first."""
    registry = _registry()
    entries = _registry_call(lambda: registry.history(alias))
    table = Table(title="promotion log")
    for column in ("#", "when", "alias", "from", "to", "reason", "report"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            str(e.seq), e.at, e.alias, e.from_version or "-", e.to_version, e.reason, e.report or ""
        )
    out.print(table)


@registry_app.command("pull")
def registry_pull(
    name: Annotated[str, typer.Argument(help="version id or alias")],
    destination: Annotated[Path, typer.Option("--out", help="directory to write")],
) -> None:
    """Download a version, checking every file's hash."""
    registry = _registry()
    path = _registry_call(lambda: registry.pull(name, destination))
    out.print(f"pulled {registry.resolve(name)} to {path}", highlight=False)


@registry_app.command("card")
def registry_card(
    name: Annotated[str, typer.Argument(help="version id or alias")],
    destination: Annotated[
        Path | None,
        typer.Option("--out", help="file to write (.md or .html); default: Markdown on stdout"),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="md or html (default: from --out's extension)")
    ] = None,
) -> None:
    """A version's model card: data window, lineage, held-out metrics, validation gates,
    interval, intended use."""
    from nba_forecast.model_card import build_card, card_format

    if destination is not None and destination.is_dir():
        raise fail(f"--out {destination} is a folder; give a file name (card.md or card.html)")
    try:
        if destination is None:  # stdout: Markdown unless --format says otherwise
            chosen = card_format("", fmt or "md")
        else:
            chosen = card_format(destination.suffix, fmt)
    except ValueError as error:
        raise fail(str(error)) from None
    registry = _registry()
    text = _registry_call(lambda: build_card(registry, name).render(chosen))
    if destination is None:
        typer.echo(text, nl=False)
        return
    try:
        destination.write_text(text, encoding="utf-8")
    except OSError as error:
        raise fail(f"cannot write {destination}: {error.strerror or error}") from None
    out.print(f"card of {registry.resolve(name)} written to {destination}", highlight=False)
