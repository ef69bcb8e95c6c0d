"""Shared helpers of the benchmarks: mailgw as a subprocess, ports, medians, reports.

Every server listens on 127.0.0.1 only.  ``mailgw`` runs from this checkout
(``python3 -m mailgw`` with the repository on ``PYTHONPATH``), with the planned
CLI: ``mailgw --config FILE serve`` and ``mailgw --config FILE user add NAME``
with the password in ``$MAILGW_PASSWORD`` (never in argv).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 40.0


class BenchError(RuntimeError):
    """A server did not start or a run went wrong; the message says why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """True once 127.0.0.1:port accepts; False on timeout or when ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOOPBACK, port), 0.5):
                return True
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} missing)"


def subprocess_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MAILGW_CONFIG", "MAILGW_DATA", "MAILGW_PASSWORD", "MAILGW_ARGON2_FAST")
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def stop_process(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> int:
    """SIGTERM, bounded wait, SIGKILL; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(10)


class MailgwServer:
    """``python3 -m mailgw --config <workdir>/mailgw.yaml serve`` with the given listeners.

    ``listeners``: ``(name, protocol)`` pairs; each gets a free loopback port,
    ``tls: none`` and ``trusted: true``.  ``ports[name]`` after :meth:`start`.
    """

    def __init__(
        self,
        workdir: Path,
        listeners: Sequence[tuple[str, str]],
        *,
        data_dir: Path | None = None,
        domains: Sequence[str] = ("example.org",),
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir if data_dir is not None else workdir / "data"
        self.config_path = workdir / "mailgw.yaml"
        self.ports = {name: free_port() for name, _ in listeners}
        self.listeners = list(listeners)
        self.domains = list(domains)
        self.proc: subprocess.Popen[bytes] | None = None
        self.out = workdir / "serve.stdout"
        self.err = workdir / "serve.stderr"

    def config(self) -> dict[str, Any]:
        return {
            "data_dir": str(self.data_dir),
            "hostname": "mx.example.org",
            "domains": self.domains,
            "listeners": [
                {
                    "name": name,
                    "protocol": protocol,
                    "address": LOOPBACK,
                    "port": self.ports[name],
                    "tls": "none",
                    "trusted": True,
                }
                for name, protocol in self.listeners
            ],
        }

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def cli(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        if not self.config_path.exists():
            self.write_config()
        proc = subprocess.run(
            [sys.executable, "-m", "mailgw", "--config", str(self.config_path), *args],
            env=subprocess_env(env),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise BenchError(
                f"mailgw {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
            )
        return proc.stdout

    def add_user(self, name: str, password: str) -> None:
        self.cli("user", "add", name, env={"MAILGW_PASSWORD": password})

    def start(self) -> MailgwServer:
        self.write_config()
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mailgw", "--config", str(self.config_path), "serve"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=subprocess_env(),
                cwd=REPO,
            )
        for name, port in self.ports.items():
            if not wait_port(port, READY_TIMEOUT, self.proc):
                self.stop()
                raise BenchError(
                    f"mailgw serve did not listen on {name} ({LOOPBACK}:{port}); "
                    f"exit code {self.proc.poll()}\n--- stdout ---\n{tail(self.out)}\n"
                    f"--- stderr ---\n{tail(self.err)}"
                )
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def maildir(self, user: str) -> Path:
        return self.data_dir / "mail" / user / "Maildir"


def count_files(*dirs: Path) -> int:
    return sum(sum(1 for _ in d.iterdir()) for d in dirs if d.is_dir())


def ratio_line(ratios: Sequence[float], target: float, what: str) -> tuple[str, bool]:
    med = statistics.median(ratios)
    met = med >= target
    shown = ", ".join(f"{r:.2f}" for r in ratios)
    verdict = "met" if met else "NOT met"
    line = f"median ratio {what}: {med:.2f} (rounds: {shown}); target >= {target}: {verdict}"
    return line, met


def machine_line() -> str:
    return f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, loopback only"


def round_order(names: Sequence[str], rnd: int) -> list[str]:
    """``names`` in order on odd rounds, reversed on even ones: no side is always first."""
    order = list(names)
    if rnd % 2 == 0:
        order.reverse()
    return order


def mail_rounds(
    names: Sequence[str],
    rounds: int,
    messages: int,
    total_bytes: int,
    one_pass: Callable[[str], float],
    figures: dict[str, list[tuple[float, float]]],
    ratios: list[float],
    against: str,
) -> None:
    """``rounds`` measured rounds of ``one_pass(name)`` (seconds for all ``messages``).

    Appends (msg/s, MB/s) to ``figures[name]`` and, when both ``mailgw`` and
    ``against`` ran, the mailgw/against ratio to ``ratios``; prints a line a round.
    """
    for rnd in range(1, rounds + 1):
        rates: dict[str, float] = {}
        for name in round_order(names, rnd):
            seconds = one_pass(name)
            rates[name] = messages / seconds
            figures[name].append((rates[name], total_bytes / seconds / 1e6))
        line = f"round {rnd}: " + "  ".join(
            f"{name} {figures[name][-1][0]:7.1f} msg/s {figures[name][-1][1]:6.1f} MB/s"
            for name in sorted(rates)
        )
        if len(rates) == 2:
            ratios.append(rates["mailgw"] / rates[against])
            line += f"  ratio {ratios[-1]:.2f}"
        print(line, flush=True)


def print_medians(figures: Mapping[str, Sequence[float]]) -> None:
    """``<name>: median N msg/s`` for each side that ran."""
    for name, values in figures.items():
        if values:
            print(f"{name}: median {statistics.median(values):.1f} msg/s")


def print_mail_medians(figures: Mapping[str, Sequence[tuple[float, float]]]) -> None:
    """``<name>: median N msg/s, M MB/s`` for each side that ran."""
    for name, values in figures.items():
        if values:
            msgs = statistics.median(v[0] for v in values)
            mbs = statistics.median(v[1] for v in values)
            print(f"{name}: median {msgs:.1f} msg/s, {mbs:.1f} MB/s")


def report_ratio(ratios: Sequence[float], target: float, what: str) -> bool:
    """Print the median ratio line; True when the target was missed (False with no ratios)."""
    if not ratios:
        return False
    text, met = ratio_line(ratios, target, what)
    print(text)
    return not met


def finish_workdir(workdir: Path, keep: bool) -> None:
    """Remove the work directory, or say where it was kept."""
    if keep:
        print(f"work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
