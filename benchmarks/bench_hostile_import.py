"""Importing damaged and oversized files: time and peak memory of each, against loading the
same real game whole (the baseline), each in a fresh process. The hostile files are the
issue's: a stats.nba.com game repeated to ~1M lines, the game with one 200 MB field, a
truncated .gz, 80 games whose every row is padded to 7 KB (under the line limit), and the
shipped 1.2M first-half scoring events as the largest valid input.

Usage: python benchmarks/bench_hostile_import.py [--field-mb 200] [--lines 1000000]
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
GAME = ROOT / "tests" / "fixtures" / "pbp" / "0021300457.csv"

# loads one file in a fresh interpreter; prints the outcome, then the peak RSS in KiB
PROBE = """
import resource, sys
from pathlib import Path
from nba_forecast.data.errors import DataError
from nba_forecast.data.loaders import load_games
try:
    result = load_games(Path(sys.argv[1]), on_error="skip")
    codes = sorted({p.code for p in result.problems})
    print(f"{len(result.games)} games" + (f", skipped: {', '.join(codes)}" if codes else ""))
except DataError as error:
    print(f"error: {error.code}")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
IMPORTS = "import nba_forecast.data.loaders; import resource; "
IMPORTS += "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def _hostile_files(folder: Path, field_mb: int, lines: int) -> list[tuple[str, Path]]:
    header, *body = GAME.read_text().splitlines(keepends=True)
    long_file = folder / "long.csv"
    with long_file.open("w") as handle:
        handle.write(header)
        for _ in range(lines // len(body) + 1):
            handle.writelines(body)
    field = folder / "field.csv"
    with field.open("w") as handle:
        handle.write(header + body[0].rstrip("\n") + ",")
        chunk = "x" * (1 << 20)
        for _ in range(field_mb):
            handle.write(chunk)
        handle.writelines(["\n", *body[1:]])
    padded = folder / "padded.csv.gz"  # 80 games, each row's description 7 KB long
    with gzip.open(padded, "wt", compresslevel=1) as handle:
        handle.write(header)
        pad = "y" * 7_000
        for number in range(80):
            game = f"00213{number:05d}"
            for line in body:
                cells = line.split(",")
                cells[0], cells[8] = game, pad  # NEUTRALDESCRIPTION
                handle.write(",".join(cells))
    packed = gzip.compress(GAME.read_bytes())
    cut = folder / "cut.csv.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    events = ROOT / "nba_forecast" / "data" / "files" / "nba_first_half_scoring_events.csv.gz"
    return [
        ("one whole game (baseline)", GAME),
        (f"one game repeated to {lines:,} lines", long_file),
        (f"one {field_mb} MB field", field),
        ("truncated .gz", cut),
        ("80 games, every row 7 KB long (.gz)", padded),
        ("1.2M first-half scoring events (valid)", events),
    ]


def _run(path: Path) -> tuple[float, str, int]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True
    )
    seconds = time.perf_counter() - start
    outcome, peak = done.stdout.strip().splitlines()[-2:]
    return seconds, outcome, int(peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--field-mb", type=int, default=200)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    imports = subprocess.run(
        [sys.executable, "-c", IMPORTS], capture_output=True, text=True, check=True
    )
    import_kib = int(imports.stdout.strip())
    table = Table(
        title="data import of hostile files (each in a fresh process; memory above the "
        f"interpreter with the loaders imported, {import_kib / 1024:.0f} MiB)"
    )
    for column in ("file", "size", "outcome", "seconds", "x baseline", "memory MiB"):
        table.add_column(column, justify="left" if column in ("file", "outcome") else "right")
    with tempfile.TemporaryDirectory() as tmp:
        baseline_s = None
        for name, path in _hostile_files(Path(tmp), args.field_mb, args.lines):
            seconds, outcome, peak_kib = _run(path)
            baseline_s = baseline_s or seconds
            table.add_row(
                name,
                f"{path.stat().st_size / 1e6:,.1f} MB",
                outcome,
                f"{seconds:.2f}",
                f"{seconds / baseline_s:.1f}x",
                f"{max(peak_kib - import_kib, 0) / 1024:,.0f}",
            )
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
