"""Load on the real server: `nba-forecast serve` as its own process, driven over loopback at
fixed request rates (open loop) by a generator in another process, logging every forecast to
SQLite and to PostgreSQL; beside the model alone (predict_details + analogs) in the same run.

Each rate sends at most rate x --seconds requests, request i due at t0 + i/rate on one of
--connections keep-alive connections; a request that waits for a free connection is still
timed from its due time (no coordinated omission). Requests still open --seconds + 15 s after
the start count as errors.

Usage: python benchmarks/bench_load.py [--rates 100,250,500,1000] [--seconds 6]
    [--connections 32] [--workers 2] [--database sqlite --database postgresql]
    [--postgres postgresql://postgres@127.0.0.1:5432/test] [--json rows.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rich.console import Console
from rich.table import Table

MARGINS = [0, 2, 2, 4, 1, -1, 0, 3, 5, 5, 7, 6, 8, 10, 9, 9, 11, 12, 10]
HOST = "127.0.0.1"
READY_TIMEOUT_S = 60
STOP_GRACE_S = 10
CAP_EXTRA_S = 15  # a rate's hard cap: --seconds plus this
WARMUP = (50, 1.0)  # req/s, seconds: before the first rate, not reported
SETTLE_TIMEOUT_S = 30
TIMES = ("p50_ms", "p99_ms", "max_ms")
console = Console(width=120)
STARTED = time.monotonic()


def progress(line: str) -> None:
    """One line as the run goes, with the seconds since it started."""
    console.print(f"[{time.monotonic() - STARTED:4.0f} s] {line}", highlight=False)


# -- the load generator (a process of its own: its CPU is not the server's) ------------------


def margins_for(rng: random.Random) -> list[int]:
    """MARGINS varied a little: each minute's change differs from MARGINS' by at most a point,
    stays within 3 points, and the margin within 20 (plausible games, as the server checks)."""
    path = [0]
    for before, after in itertools.pairwise(MARGINS):
        step = max(-3, min(3, after - before + rng.choice((-1, 0, 1))))
        path.append(max(-20, min(20, path[-1] + step)))
    return path


def encode_requests(spec: dict[str, Any]) -> list[bytes]:
    """Every request of a phase, encoded before the clock starts."""
    rng = random.Random(f"{spec['prefix']}")
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: {HOST}:{spec['port']}\r\n"
        f"Content-Type: application/json\r\nAuthorization: Bearer {spec['token']}\r\n"
    )
    encoded = []
    for i in range(spec["count"]):
        body = json.dumps(
            {
                "game_id": f"{spec['prefix']}-{i}",
                "margins": margins_for(rng),
                "home_team": "SAS",
                "away_team": "PHI",
            },
            separators=(",", ":"),
        ).encode()
        encoded.append(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return encoded


class Connection:
    """One keep-alive HTTP/1.1 connection; reopened after an error or `Connection: close`."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, request: bytes) -> int:
        """The response's status; raises OSError or an asyncio read error on a broken one."""
        if self.streams is None:
            self.streams = await asyncio.open_connection(HOST, self.port)
        reader, writer = self.streams
        writer.write(request)
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).lower()
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line[15:])
        await reader.readexactly(length)
        if b"\r\nconnection: close" in head:
            self.close()
        return status

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


@dataclass
class Tally:
    latencies_s: list[float]
    errors: int = 0
    done: int = 0
    last_done: float = 0.0


async def generate(spec: dict[str, Any]) -> dict[str, Any]:
    """Send spec['count'] requests at spec['rate'] per second, open loop; the raw results."""
    requests = encode_requests(spec)
    connections = [Connection(spec["port"]) for _ in range(spec["connections"])]
    for connection in connections:  # connect before the clock starts (or retry per request)
        with contextlib.suppress(OSError):
            connection.streams = await asyncio.open_connection(HOST, spec["port"])
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    tally = Tally([])
    statuses: dict[int, int] = {}
    finished = asyncio.Event()
    t0 = time.perf_counter() + 0.05

    async def schedule() -> None:
        for i in range(len(requests)):
            due = t0 + i / spec["rate"]
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((i, due))

    async def work(connection: Connection) -> None:
        while True:
            i, due = await queue.get()
            try:
                status = await connection.send(requests[i])
            except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                status = 0  # connection error: counted as one, the connection reopened
                connection.close()
            now = time.perf_counter()
            statuses[status] = statuses.get(status, 0) + 1
            if 200 <= status < 300:
                tally.latencies_s.append(now - due)
                tally.last_done = now
            else:
                tally.errors += 1
            tally.done += 1
            if tally.done == len(requests):
                finished.set()

    tasks = [asyncio.create_task(schedule())]
    tasks += [asyncio.create_task(work(c)) for c in connections]
    deadline = t0 + spec["seconds"] + CAP_EXTRA_S
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(finished.wait(), max(deadline - time.perf_counter(), 0))
    for task in tasks:
        task.cancel()
    for connection in connections:
        connection.close()
    return {
        "latencies_s": tally.latencies_s,
        "errors": tally.errors + len(requests) - tally.done,  # still open at the cap: timeouts
        "timeouts": len(requests) - tally.done,
        "statuses": statuses,
        "elapsed_s": max(tally.last_done - t0, 1e-9),
    }


def run_phase(spec: dict[str, Any]) -> dict[str, Any]:
    """One rate, in a generator process of its own (this file with --generate)."""
    done = subprocess.run(
        [sys.executable, __file__, "--generate"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=spec["seconds"] + CAP_EXTRA_S + 60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed: {done.stderr.strip()[-2000:]}")
    return dict(json.loads(done.stdout))


# -- the model alone, the registry, the database and the server -------------------------------


def quantile_ms(samples: list[float], q: float) -> float:
    """Nearest-rank quantile, in milliseconds."""
    ordered = sorted(samples)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)] * 1000


def train_and_register(root: Path, calls: int = 300) -> tuple[Path, dict[str, float]]:
    """Train, register and promote 'production'; the registry folder and the model-alone time
    (predict_details + analogs, as the server calls it per request)."""
    import numpy as np

    from nba_forecast.data.shipped import load_shipped_games
    from nba_forecast.lifecycle.training import train_ensemble
    from nba_forecast.storage.object_store import FileStore
    from nba_forecast.storage.registry import Registry

    model, _ = train_ensemble(load_shipped_games())
    registry = Registry(FileStore(root / "registry"))
    version = registry.register(model.save(root / "v1")).version
    registry.promote("production", version, reason="load benchmark")
    X = np.array([[*MARGINS, 1.5, 0.0]])
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        model.predict_details(X)
        model.analogs(X, 5)
        samples.append(time.perf_counter() - start)
    alone = {"p50_ms": statistics.median(samples) * 1000, "p99_ms": quantile_ms(samples, 0.99)}
    return root / "registry", alone


@contextlib.contextmanager
def fresh_database(kind: str, root: Path, admin_url: str) -> Iterator[str | None]:
    """A new SQLite file, or a new PostgreSQL database dropped afterwards; None when
    PostgreSQL cannot be reached (skipped, not failed)."""
    if kind == "sqlite":
        yield f"sqlite:///{root / 'sqlite' / 'predictions.db'}"
        return
    import psycopg
    from psycopg import sql

    name = f"nba_forecast_bench_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        progress(f"PostgreSQL at {admin_url} not reachable, skipped: {error}".strip())
        yield None
        return
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield urlparse(admin_url)._replace(path=f"/{name}").geturl()
        finally:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def serve_command(port: int, workers: int) -> list[str]:
    script = Path(sys.executable).parent / "nba-forecast"
    found = str(script) if script.exists() else shutil.which("nba-forecast")
    base = [found] if found else [sys.executable, "-m", "nba_forecast.cli"]
    command = [*base, "serve", "--host", HOST, "--port", str(port)]
    return command + (["--workers", str(workers)] if workers > 1 else [])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_server(
    home: Path, registry: Path, database_url: str, token: str, workers: int
) -> Iterator[tuple[int, int]]:
    """`nba-forecast serve` on a free loopback port, ready: its port and process id; always
    stopped afterwards."""
    port = free_port()
    # only our settings: no routing file, nothing from the caller's deployment
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBA_FORECAST_")}
    env |= {
        "NBA_FORECAST_HOME": str(home),
        "NBA_FORECAST_REGISTRY_URL": registry.as_uri(),
        "NBA_FORECAST_DATABASE_URL": database_url,
        "NBA_FORECAST_API_TOKEN": token,
    }
    home.mkdir(parents=True)
    log_path = home / "server.log"
    # output to a file, not a pipe: a chatty server must never block on a full pipe
    with log_path.open("w") as log:
        process = subprocess.Popen(
            serve_command(port, workers),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers stop with it
        )
        try:
            wait_ready(process, port, log_path)
            yield port, process.pid
        finally:
            stop_group(process)


def wait_ready(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    """/readyz answers 200, then the server's processes go idle: with several workers,
    /readyz answers once the first is ready, and the others load their models meanwhile."""
    import httpx

    deadline = time.monotonic() + READY_TIMEOUT_S
    ready = False
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(log_path.read_text())
        if not ready:
            with contextlib.suppress(httpx.TransportError):
                url = f"http://{HOST}:{port}/readyz"
                ready = httpx.get(url, timeout=2).status_code == 200
        if ready and settle(process.pid, deadline):
            return
        time.sleep(0.25)
    if ready:  # busy on its own (a background thread): measure anyway, and say so
        progress(f"the server was still busy {READY_TIMEOUT_S} s after it started")
        return
    raise ServerFailed(f"/readyz not 200 within {READY_TIMEOUT_S} s\n{log_path.read_text()}")


def settle(pid: int, deadline: float, window_s: float = 0.5) -> bool:
    """Wait until the process and its children use under a tenth of a CPU over ``window_s``
    (at once where there is no /proc to tell); False if they are still busy at ``deadline``."""
    if not Path("/proc").is_dir():
        return True
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(window_s)
        if cpu_seconds(pid) - before < 0.1 * window_s:
            return True
    return False


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its descendants, from /proc (0 for those gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return own + sum(cpu_seconds(int(child)) for child in children)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, SIGKILL after STOP_GRACE_S; then any worker
    left behind is killed too."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class ServerFailed(RuntimeError):
    def explain(self, workers: int) -> str:
        text = str(self).strip()
        if workers > 1 and "--workers" in text and "no such option" in text.lower():
            return (
                "this `nba-forecast serve` has no --workers option yet: "
                "rerun with --workers 1 (or once the option has landed)"
            )
        return "the server did not start:\n" + "\n".join(text.splitlines()[-15:])


def server_log_tail(home: Path, lines: int = 8) -> str:
    """The end of the server's log without its access lines: why requests failed."""
    text = (home / "server.log").read_text(errors="replace").splitlines()
    kept = [line for line in text if '"POST /v1/predict HTTP/1.1"' not in line]
    return "\n".join(kept[-lines:])


def logged(database_url: str, spool_dir: Path) -> tuple[int, int]:
    """Forecasts in the prediction log, and records still in the spools (one per worker)."""
    from nba_forecast.storage.prediction_log import PredictionLog
    from nba_forecast.storage.spool import SpoolingPredictionLog

    log = PredictionLog(database_url)
    try:
        spools = sorted(spool_dir.glob("prediction-log*.jsonl"))
        pending = sum(SpoolingPredictionLog(log, path).pending() for path in spools)
        return log.counts()["predictions"], pending
    finally:
        log.engine.dispose()


# -- one database: warm-up, then each rate ----------------------------------------------------


def summarize(kind: str, rate: int, raw: dict[str, Any], alone_p50: float) -> dict[str, Any]:
    latencies = raw["latencies_s"]
    p50 = quantile_ms(latencies, 0.5) if latencies else math.nan
    return {
        "database": kind,
        "rate": rate,
        "achieved": len(latencies) / raw["elapsed_s"],
        "requests": len(latencies) + raw["errors"],
        "p50_ms": p50,
        "p99_ms": quantile_ms(latencies, 0.99) if latencies else math.nan,
        "max_ms": max(latencies) * 1000 if latencies else math.nan,
        "errors": raw["errors"],
        "timeouts": raw["timeouts"],
        "statuses": raw["statuses"],
        "p50_vs_model": p50 / alone_p50,
    }


@dataclass
class Setup:
    root: Path
    registry: Path
    alone: dict[str, float]  # the model alone: p50_ms, p99_ms
    notes: list[str]


def bench_database(
    kind: str, url: str, args: argparse.Namespace, setup: Setup
) -> list[dict[str, Any]]:
    home = setup.root / f"home-{kind}"
    token = secrets.token_urlsafe(24)
    rows = []
    with running_server(home, setup.registry, url, token, args.workers) as (port, pid):

        def phase(rate: int, seconds: float, prefix: str) -> dict[str, Any]:
            count = max(int(rate * seconds), 1)
            # each rate starts on an idle server, not on the last one's backlog
            if not settle(pid, time.monotonic() + SETTLE_TIMEOUT_S):
                progress(f"the server was still busy {SETTLE_TIMEOUT_S} s after the last rate")
            return run_phase(
                {"port": port, "token": token, "connections": args.connections}
                | {"rate": rate, "count": count, "seconds": seconds, "prefix": prefix}
            )

        progress(f"{kind}: server ready ({args.workers} worker(s)), warming up")
        phase(*WARMUP, prefix=f"{kind}-warm")
        for rate in args.rates:
            raw = phase(rate, args.seconds, prefix=f"{kind}-{rate}")
            rows.append(summarize(kind, rate, raw, setup.alone["p50_ms"]))
            progress(
                f"{kind} {rate}/s: {rows[-1]['achieved']:.0f}/s achieved, "
                f"p99 {rows[-1]['p99_ms']:.1f} ms, {raw['errors']} errors {raw['statuses']}"
            )
    if any(row["errors"] for row in rows):
        setup.notes.append(f"{kind}: server log, last lines:\n{server_log_tail(home)}")
    # the server has stopped: every forecast it answered is in the log or its spool
    stored, spooled = logged(url, home / "spool")
    answered = int(WARMUP[0] * WARMUP[1]) + sum(r["requests"] - r["errors"] for r in rows)
    setup.notes.append(
        f"{kind}: {stored:,} forecasts in the log and {spooled:,} spooled, "
        f"for {answered:,} answered requests"
    )
    return rows


# -- output -----------------------------------------------------------------------------------


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace, setup: Setup) -> None:
    alone = setup.alone
    console.print(
        f"model alone (predict_details + analogs, in-process): median {alone['p50_ms']:.2f} ms, "
        f"p99 {alone['p99_ms']:.2f} ms",
        highlight=False,
    )
    table = Table(
        title=f"POST /v1/predict on the real server: {args.workers} worker(s), "
        f"{args.connections} connections, {args.seconds:g} s per rate, {os.cpu_count()} CPUs"
    )
    columns = ("database", "target/s", "achieved/s", "requests", "p50 ms", "p99 ms", "max ms")
    for column in (*columns, "errors", "p50 / model p50"):
        table.add_column(column, justify="right")
    for row in rows:
        ms = [f"{row[k]:.2f}" if math.isfinite(row[k]) else "-" for k in TIMES]
        ratio = row["p50_vs_model"]
        table.add_row(
            row["database"],
            str(row["rate"]),
            f"{row['achieved']:.0f}",
            str(row["requests"]),
            *ms,
            str(row["errors"]),
            f"{ratio:.1f}x" if math.isfinite(ratio) else "-",
        )
    console.print(table)
    for note in setup.notes:
        console.print(note, highlight=False)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="100,250,500,1000", help="requests/s, comma list")
    parser.add_argument("--seconds", type=float, default=6.0, help="per rate")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--database", action="append", choices=("sqlite", "postgresql"))
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="an existing database to create the benchmark's database from",
    )
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.rates = [int(r) for r in args.rates.split(",") if r.strip()]
    args.database = args.database or ["sqlite", "postgresql"]
    return args


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # so every finally runs: servers stopped, databases dropped


def main() -> None:
    args = parse_args()
    if args.generate:  # the load generator's process: spec on stdin, results on stdout
        print(json.dumps(asyncio.run(generate(json.loads(sys.stdin.read())))))
        return
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # other work on these CPUs skews every number: say how busy the machine was
    busy = f"load average {os.getloadavg()[0]:.2f} at the start"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="nba-forecast-load-") as tmp:
        root = Path(tmp)
        registry, alone = train_and_register(root)
        setup = Setup(root, registry, alone, notes=[])
        progress(f"trained and registered; model alone: median {alone['p50_ms']:.2f} ms")
        for kind in args.database:
            with fresh_database(kind, root, args.postgres) as url:
                if url is None:
                    continue
                try:
                    rows += bench_database(kind, url, args, setup)
                except ServerFailed as error:
                    console.print(error.explain(args.workers), highlight=False)
                    raise SystemExit(2) from None
    setup.notes.append(f"whole run {time.monotonic() - STARTED:.0f} s; {busy}")
    print_table(rows, args, setup)
    if args.json:
        meta = {k: v for k, v in vars(args).items() if k not in ("json", "generate")}
        args.json.write_text(
            json.dumps({"model_alone": alone, "args": meta, "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
