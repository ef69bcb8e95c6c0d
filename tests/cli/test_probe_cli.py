"""``mailgw probe``: options, exit codes of every mode, output formats (engine faked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mailgw.cli.main import app
from mailgw.errors import MailgwError
from mailgw.probe.model import ProbeReport, ProbeResult
from tests.probe.records import report, result, tls, unreachable

REPO = Path(__file__).resolve().parents[2]


class FakeEngine:
    """Stands in for ``run_probes`` (and ``mx_hosts``); records what the CLI asked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[list[Any], Any]] = []
        self.results: dict[str, ProbeResult] = {}
        self.mx: dict[str, list[str]] = {}
        import mailgw.probe.mx
        import mailgw.probe.runner

        monkeypatch.setattr(mailgw.probe.runner, "run_probes", self.run_probes)
        monkeypatch.setattr(mailgw.probe.mx, "mx_hosts", self.mx_hosts)
        monkeypatch.delenv("MAILGW_PROBE_PASSWORD", raising=False)

    def set(self, *results: ProbeResult) -> None:
        for r in results:
            self.results[r.target] = r

    async def run_probes(self, targets: list[Any], options: Any) -> ProbeReport:
        self.calls.append((list(targets), options))
        out = []
        for t in targets:
            key = str(t)
            out.append(self.results.get(key) or unreachable(t.proto, t.port))
            out[-1].target, out[-1].host = key, t.host
        return report(*out)

    async def mx_hosts(self, domain: str, *, resolver: Any = None) -> list[str]:
        if domain not in self.mx:
            from mailgw.probe.mx import MxError

            raise MxError(f"{domain}: NXDOMAIN")
        return self.mx[domain]

    @property
    def targets(self) -> list[str]:
        return [str(t) for t in self.calls[-1][0]]

    @property
    def options(self) -> Any:
        return self.calls[-1][1]


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    return FakeEngine(monkeypatch)


def probe(*args: str, input: str | None = None) -> tuple[int, str]:
    """(exit code, output); a MailgwError maps to its exit code as ``main()`` does."""
    res = CliRunner().invoke(app, ["probe", *args], input=input)
    if isinstance(res.exception, MailgwError):
        return res.exception.exit_code, res.output + f"mailgw: error: {res.exception}\n"
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.output


IMAP = "127.0.0.1:143/imap"


def test_one_target_ok_text(engine: FakeEngine) -> None:
    engine.set(result())
    code, out = probe(IMAP)
    assert code == 0, out
    assert out.startswith("127.0.0.1:143/imap  OK")
    assert "(exit 0)" in out
    assert engine.targets == [IMAP]
    assert engine.options.deadline > 9 and engine.options.user is None


def test_bare_host_probes_seven_standard_ports_at_once(engine: FakeEngine) -> None:
    engine.set(result())
    code, out = probe("127.0.0.1")
    assert len(engine.calls) == 1  # one concurrent run, not seven
    assert sorted(t.rsplit("/", 1)[1] for t in engine.targets) == sorted(
        ["smtp", "submission", "smtps", "pop3", "pop3s", "imap", "imaps"]
    )
    assert code == 1  # six refused, one ok
    assert "-- 7 target(s): 1 ok, 6 with problems, 1 reachable" in out


def test_port_and_proto_options(engine: FakeEngine) -> None:
    probe("127.0.0.1", "--port", "1143", "--proto", "imap")
    assert engine.targets == ["127.0.0.1:1143/imap"]
    probe("127.0.0.1", "--proto", "pop3s")
    assert engine.targets == ["127.0.0.1:995/pop3s"]


def test_targets_file_several_targets_deduplicated(engine: FakeEngine, tmp_path: Path) -> None:
    f = tmp_path / "targets"
    f.write_text("# office\n127.0.0.1:143/imap\n\n[::1]:993/imaps  # v6\n")
    engine.set(result(), result(proto="imaps", port=993, host="::1", target="[::1]:993/imaps"))
    code, out = probe("--targets-file", str(f), IMAP)
    assert engine.targets == [IMAP, "[::1]:993/imaps"]
    assert code == 0, out


def test_exit_codes_outside_nagios(engine: FakeEngine) -> None:
    engine.set(result())
    assert probe(IMAP, "127.0.0.1:25/smtp")[0] == 1  # one refused
    assert probe("127.0.0.1:25/smtp")[0] == 3  # nothing reachable
    assert probe(IMAP, "--json")[0] == 0
    assert probe("127.0.0.1:25/smtp", "--json")[0] == 3
    engine.set(result(tls=tls(3)))
    assert probe(IMAP)[0] == 1


@pytest.mark.parametrize(
    "args",
    [
        ["127.0.0.1:99999/imap"],
        ["127.0.0.1:1234"],  # not a standard port: needs /proto
        ["127.0.0.1", "--proto", "gopher"],
        [],
        ["127.0.0.1", "--warn-days", "5", "--crit-days", "10"],
        ["127.0.0.1", "--warn-time", "2", "--crit-time", "1"],
        ["127.0.0.1", "--deadline", "0"],
        ["127.0.0.1", "--password-file", "/dev/null"],
        ["127.0.0.1", "--port", "abc"],
        ["127.0.0.1", "--no-such-option"],
    ],
)
def test_usage_errors_exit_2_and_nagios_unknown(engine: FakeEngine, args: list[str]) -> None:
    code, _ = probe(*args)
    assert code == 2
    code, out = probe(*args, "--nagios")
    assert code == 3
    assert out.startswith("PROBE UNKNOWN - ") and len(out.strip().splitlines()) == 1
    assert engine.calls == []


def test_json_and_nagios_exclude_each_other(engine: FakeEngine) -> None:
    code, out = probe("127.0.0.1", "--json", "--nagios")
    assert code == 3 and out == "PROBE UNKNOWN - --json and --nagios exclude each other\n"
    assert engine.calls == []


def test_json_document(engine: FakeEngine) -> None:
    engine.set(result())
    code, out = probe(IMAP, "127.0.0.1:25/smtp", "--json", "--require-tls")
    doc = json.loads(out)
    assert code == 1
    assert sorted(doc) == ["deadline", "elapsed", "health", "mx", "results", "schema", "started"]
    assert doc["schema"] == 1 and doc["deadline"] == 10.0
    assert [r["target"] for r in doc["results"]] == [IMAP, "127.0.0.1:25/smtp"]
    assert doc["health"]["verdict"] == "failed" and doc["health"]["exit_code"] == 1
    assert doc["health"]["thresholds"]["require_tls"] is True
    assert [h["healthy"] for h in doc["health"]["results"]] == [True, False]


def test_nagios_ok_warning_critical(engine: FakeEngine) -> None:
    engine.set(result())
    code, out = probe(IMAP, "--nagios", "--warn-time", "1", "--crit-time", "2")
    assert code == 0
    assert out == (
        "PROBE OK - 127.0.0.1:143/imap answered in 0.123s, TLSv1.3, certificate 90 days left"
        " | time=0.123s;1;2;0 cert_days=90;21;7;;\n"
    )
    engine.set(result(tls=tls(15)))
    code, out = probe(IMAP, "--nagios")
    assert code == 1 and out.startswith("PROBE WARNING - ")
    code, out = probe(IMAP, "--nagios", "--warn-days", "30", "--crit-days", "20")
    assert code == 2 and "cert_days=15;30;20;;" in out
    code, out = probe("127.0.0.1:25/smtp", "--nagios")
    assert code == 2 and out.startswith("PROBE CRITICAL - ") and "time=U;;;0" in out
    engine.set(result(timings={"total": 1.5}))
    assert probe(IMAP, "--nagios", "--warn-time", "1", "--crit-time", "2")[0] == 1
    assert probe(IMAP, "--nagios", "--warn-time", "0.5", "--crit-time", "1")[0] == 2


def test_nagios_several_targets_labels(engine: FakeEngine) -> None:
    engine.set(result(), result(proto="imaps", port=993))
    code, out = probe(IMAP, "127.0.0.1:993/imaps", "--nagios")
    first = out.splitlines()[0]
    assert code == 0 and first.startswith("PROBE OK - 2/2 targets OK")
    assert "'imap_143_time'=0.123s;;;0" in first and "'imaps_993_cert_days'=90;21;7;;" in first


def test_require_tls_and_require_auth(engine: FakeEngine) -> None:
    engine.set(result(starttls_offered=False, starttls_ok=None, tls=None, auth_mechanisms=[]))
    assert probe(IMAP)[0] == 0
    code, out = probe(IMAP, "--require-tls", "--nagios")
    assert code == 2 and "TLS required: STARTTLS not offered" in out
    engine.set(result())
    assert probe(IMAP, "--require-auth", "plain", "--nagios")[0] == 0
    code, out = probe(IMAP, "--require-auth", "CRAM-MD5", "--nagios")
    assert code == 2 and "AUTH CRAM-MD5 not offered after TLS" in out
    code, out = probe(IMAP, "--require-auth", "CRAM-MD5")
    assert code == 1 and "CRITICAL require-auth" in out


def test_insecure_accepts_unverified_chain(engine: FakeEngine) -> None:
    engine.set(result(tls=tls(chain_verified=False, verify_error="self-signed certificate")))
    assert probe(IMAP, "--nagios")[0] == 2
    assert probe(IMAP, "--nagios", "--insecure")[0] == 0
    assert engine.options.insecure is True


def test_login_password_from_file_stdin_or_env(
    engine: FakeEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.set(result(login="ok"))
    pw = tmp_path / "pw"
    pw.write_text("s3cret file\nignored\n")
    code, _ = probe(IMAP, "--user", "alice", "--password-file", str(pw))
    assert code == 0
    assert (engine.options.user, engine.options.password) == ("alice", "s3cret file")
    probe(IMAP, "--user", "bob", "--password-file", "-", input="from stdin\n")
    assert engine.options.password == "from stdin"
    monkeypatch.setenv("MAILGW_PROBE_PASSWORD", "from env")
    probe(IMAP, "--user", "carol")
    assert engine.options.password == "from env"
    engine.set(result(login="failed", login_error="NO [AUTHENTICATIONFAILED]"))
    code, out = probe(IMAP, "--user", "carol", "--nagios")
    assert code == 2 and "AUTHENTICATIONFAILED" in out


def test_password_never_from_argv(engine: FakeEngine) -> None:
    code, out = probe(IMAP, "--user", "alice", "--password", "x", "--nagios")
    assert code == 3 and "No such option" in out and engine.calls == []
    # no password anywhere and no terminal: a usage error, not a hang
    code, out = probe(IMAP, "--user", "alice", "--nagios", input="")
    assert code == 3 and "PROBE UNKNOWN - no password given" in out
    assert probe(IMAP, "--user", "alice", input="")[0] == 2


def test_ehlo_ca_file_and_deadline_passed(engine: FakeEngine, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    probe(IMAP, "--ehlo", "probe.example.org", "--ca-file", str(ca), "--deadline", "3")
    opts = engine.options
    assert opts.ehlo_name == "probe.example.org" and opts.ca_file == ca
    assert 2 < opts.deadline <= 3
    assert probe(IMAP, "--ca-file", str(tmp_path / "missing.pem"))[0] == 2


def test_mx_targets_and_report(engine: FakeEngine) -> None:
    engine.mx = {"example.org": ["mx1.example.org", "mx2.example.org"]}
    code, out = probe("--mx", "example.org", "--json")
    doc = json.loads(out)
    assert engine.targets == ["mx1.example.org:25/smtp", "mx2.example.org:25/smtp"]
    assert doc["mx"] == {"example.org": ["mx1.example.org", "mx2.example.org"]}
    assert code == 3
    code, out = probe("--mx", "nowhere.invalid")
    assert code == 3 and "NXDOMAIN" in out and len(engine.calls) == 1  # no second run
    code, out = probe("--mx", "nowhere.invalid", "--nagios")
    assert code == 3 and out.startswith("PROBE UNKNOWN - nowhere.invalid: NXDOMAIN")


def test_subprocess_usage_in_nagios_mode_and_epilog() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MAILGW_PROBE_PASSWORD"}
    env["PYTHONPATH"] = str(REPO)
    run = subprocess.run(
        [sys.executable, "-m", "mailgw", "probe", "--nagios", "--proto", "x", "127.0.0.1"],
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert run.returncode == 3, run.stderr
    assert run.stdout.startswith("PROBE UNKNOWN - unknown --proto 'x'")
    helped = subprocess.run(
        [sys.executable, "-m", "mailgw", "probe", "--help"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert helped.returncode == 0
    text = " ".join(helped.stdout.split())
    assert "3 nothing reachable" in text and "3 UNKNOWN" in text
    assert "--password-file" in text and "--password " not in text
