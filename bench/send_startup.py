"""Median wall time of ``mailgw send`` for one message (target: under 150 ms).

Each run is a fresh process, as cron or a script would start it, with
``env -i``-like conditions (only PATH, MAILGW_DATA and PYTHONPATH set) and
a 1 KiB message on standard input; exit status 0 means the message is
fsynced in the spool.  Baselines, measured in the same run and the same way:

* ``python3 -c pass``: the interpreter's own start (the floor);
* ``python3 -c "import typer"``: what any Typer-based command pays before
  parsing an argument (``mailgw send`` skips Typer on purpose);
* ``mailgw --version`` through Typer, for comparison.

The cases are interleaved run by run, so load from other processes hits
them alike; the ratio to ``python3 -c pass`` is the stable figure, the
absolute time depends on the machine.  Usage:
``python3 bench/send_startup.py [--runs N]``.  Prints each median,
the ratio to the interpreter floor, and PASS/FAIL against the target.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_MS = 150.0
MESSAGE = (
    b"Subject: bench\nTo: someone@example.com\n\n" + b"x" * 70 + b"\n"
) + b"line of body text that is long enough to matter a little bit\n" * 15


def timed(argv: list[str], env: dict[str, str], data: bytes, runs: int) -> list[float]:
    """Wall times in ms of ``runs`` runs; raises if one exits non-zero."""
    result = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, input=data, env=env, capture_output=True, check=False)
        result.append((time.perf_counter() - start) * 1000.0)
        if proc.returncode != 0:
            raise SystemExit(
                f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}"
            )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    py = os.path.realpath(sys.executable)
    script = shutil.which("mailgw", path=os.path.dirname(py))  # the real console script
    with tempfile.TemporaryDirectory(prefix="mailgw-bench-send-") as tmp:
        env = {
            "PATH": "/usr/bin:/bin",
            "MAILGW_DATA": str(Path(tmp) / "data"),
            "PYTHONPATH": str(REPO),
        }
        cases: list[tuple[str, list[str], bytes]] = [
            ("python3 -c pass", [py, "-c", "pass"], b""),
            ("python3 -c 'import typer'", [py, "-c", "import typer"], b""),
            ("mailgw --version (Typer)", [py, "-m", "mailgw", "--version"], b""),
            ("python3 -m mailgw send", [py, "-m", "mailgw", "send", "bob@example.com"], MESSAGE),
        ]
        if script:
            cases.append(("mailgw send (console script)", [script, "send", "a@b.example"], MESSAGE))
        # warm the page cache once per command, then interleave the cases so
        # that a busy machine slows every case alike
        for _name, argv, data in cases:
            timed(argv, env, data, 1)
        samples: dict[str, list[float]] = {name: [] for name, _argv, _data in cases}
        for _ in range(args.runs):
            for name, argv, data in cases:
                samples[name] += timed(argv, env, data, 1)
        medians = {name: statistics.median(values) for name, values in samples.items()}
        queued = len(os.listdir(Path(tmp) / "data" / "queue" / "meta"))
    floor = medians["python3 -c pass"]
    print(f"send_startup: {args.runs} runs per case, median wall time")
    for name, ms in medians.items():
        print(f"  {name:34s} {ms:7.1f} ms   {ms / floor:5.2f}x interpreter start")
    send_ms = max(v for k, v in medians.items() if "send" in k)
    ok = send_ms < TARGET_MS
    print(f"  messages queued: {queued}")
    print(
        f"result: mailgw send median {send_ms:.1f} ms (target < {TARGET_MS:.0f} ms): "
        f"{'PASS' if ok else 'FAIL'}; {send_ms / floor:.2f}x python3 -c pass"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
