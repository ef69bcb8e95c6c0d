"""Start a private Debian Dovecot 2.3 on loopback for interoperability tests.

Reusable (meant to move to tests/interop/): :func:`start_dovecot` writes a
self-contained configuration (own base_dir, state_dir, log_path,
instance_name, 127.0.0.1 listeners on free ports, passwd-file users with
``{PLAIN}`` passwords, ``mail_location = maildir:~/Maildir``, an INBOX
namespace with separator "/" and prefix "") and starts Dovecot as a daemon.

Dovecot refuses to serve mail as uid 0, so when the tests run as root the
mail is served as Debian's ``mail`` user (uid 8, ``first_valid_uid = 8``) and
the homes are chowned to it; otherwise as the current user.  The work
directory is made outside pytest's private (0700) tmp tree so that Dovecot's
unprivileged processes can reach it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"


def dovecot_missing() -> str | None:
    """Why Dovecot cannot be used here, or None when it can."""
    for binary in (DOVECOT, DOVEADM):
        if not os.access(binary, os.X_OK):
            return f"{binary} is not installed (Debian packages dovecot-core, dovecot-imapd)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("mail")
        except KeyError:
            return "no 'mail' system user to run Dovecot's mail processes as"
    return None


def require_dovecot() -> None:
    """Skip the test when Dovecot is missing, but fail under CI=true."""
    reason = dovecot_missing()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and Dovecot is required: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mail_user() -> tuple[str, int, int]:
    """(name, uid, gid) Dovecot serves mail as."""
    pw = pwd.getpwnam("mail") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    return pw.pw_name, pw.pw_uid, pw.pw_gid


def make_workdir(prefix: str = "mailgw-dovecot-") -> Path:
    """A directory Dovecot's unprivileged processes can traverse."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def chown_tree(root: Path, uid: int, gid: int) -> None:
    if os.geteuid() != 0:
        return
    os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


@dataclass
class Dovecot:
    root: Path
    conf: Path
    imap_port: int
    pop3_port: int
    log: Path
    users: dict[str, tuple[str, Path]] = field(default_factory=dict)

    def doveadm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DOVEADM, "-c", str(self.conf), *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def mailbox_status(self, user: str) -> dict[str, dict[str, int]]:
        """``doveadm mailbox status 'messages uidvalidity uidnext' '*'`` as a dict."""
        out = self.doveadm(
            "mailbox", "status", "-u", user, "messages uidvalidity uidnext", "*"
        ).stdout
        result: dict[str, dict[str, int]] = {}
        for line in out.splitlines():
            name, *fields = line.split(" ")
            # names may contain spaces: the last three fields are key=value
            name = " ".join([name, *fields[:-3]])
            result[name] = {k: int(v) for k, v in (f.split("=", 1) for f in fields[-3:])}
        return result

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def master_pid(self) -> int | None:
        try:
            return int((self.root / "base" / "master.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def stop(self) -> None:
        pid = self.master_pid()
        self.doveadm("stop", check=False)
        if pid is None:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


CONF_TEMPLATE = """\
base_dir = {root}/base
state_dir = {root}/state
log_path = {root}/dovecot.log
instance_name = {instance}
listen = 127.0.0.1
protocols = imap pop3
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
default_internal_user = {user}
default_login_user = {user}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/users.passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/users.passwd
}}
namespace inbox {{
  inbox = yes
  separator = /
  prefix =
}}
{extra}
"""


def _wait_listening(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return True
        time.sleep(0.05)
    return False


def start_dovecot(
    root: Path, users: dict[str, tuple[str, Path]], *, extra_conf: str = ""
) -> Dovecot:
    """Start Dovecot under ``root``; ``users`` maps name -> (password, home).

    The homes are chowned to the mail user.  Call :meth:`Dovecot.stop` after.
    """
    name, uid, gid = mail_user()
    for d in ("base", "state"):
        (root / d).mkdir(exist_ok=True)
    lines = [f"{u}:{{PLAIN}}{pw}:{uid}:{gid}::{home}::" for u, (pw, home) in users.items()]
    (root / "users.passwd").write_text("\n".join(lines) + "\n")
    for _, home in users.values():
        home.mkdir(parents=True, exist_ok=True)
        chown_tree(home, uid, gid)
        for parent in home.parents:  # mailgw makes its data dirs 0700
            if parent == root or root not in parent.parents:
                break
            parent.chmod(parent.stat().st_mode | 0o711)
    last_error = ""
    for _ in range(3):  # a free port can be taken between probing and binding
        imap_port, pop3_port = free_port(), free_port()
        conf = root / "dovecot.conf"
        conf.write_text(
            CONF_TEMPLATE.format(
                root=root,
                instance=f"mailgw-test-{os.getpid()}-{imap_port}",
                uid=uid,
                gid=gid,
                user=name,
                imap_port=imap_port,
                pop3_port=pop3_port,
                extra=extra_conf,
            )
        )
        dc = Dovecot(root, conf, imap_port, pop3_port, root / "dovecot.log", dict(users))
        # the daemon inherits stdio: send it to a file, not to a pipe we would wait on
        errfile = root / "dovecot.stderr"
        with open(errfile, "wb") as err:
            proc = subprocess.run(
                [DOVECOT, "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                timeout=30,
            )
        if proc.returncode == 0 and _wait_listening(imap_port, 10):
            return dc
        last_error = errfile.read_text(errors="replace") + dc.log_text()
        dc.stop()
    raise RuntimeError(f"Dovecot did not start: {last_error}")


@contextlib.contextmanager
def running_dovecot(
    users: dict[str, tuple[str, Path]] | None = None, *, root: Path | None = None
) -> Iterator[Dovecot]:
    """Context manager around :func:`start_dovecot`; removes a workdir it made."""
    own = root is None
    work = make_workdir() if root is None else root
    dc = start_dovecot(work, users or {})
    try:
        yield dc
    finally:
        dc.stop()
        if own:
            shutil.rmtree(work, ignore_errors=True)
