"""Private real peers for interoperability tests: Debian's Dovecot 2.3 and Postfix 3.7.

Theory of operation
-------------------
Each instance gets its own configuration directory (a fresh ``mkdtemp``, mode
0755, outside pytest's private 0700 tree so the peers' unprivileged processes
can reach it), listens on ``127.0.0.1`` only, on free high ports, and is
stopped by :meth:`stop` / the context manager / the fixtures in
``tests/interop/conftest.py``.  Several instances can run at once: Dovecot gets
its own ``base_dir``, ``state_dir``, ``log_path`` and ``instance_name``; Postfix
its own ``config_directory``, ``queue_directory`` and ``data_directory``.

Ownership (running as root, which is how the tests and CI run)
    Dovecot refuses to serve mail as uid 0, so mail is served as Debian's
    ``mail`` user (uid 8; ``first_valid_uid`` is lowered to it).  With
    ``chown=True`` (the default) :class:`DovecotInstance` chowns the data
    directory *recursively* and the passwd-file to ``mail:mail``.  Root keeps
    full read/write access afterwards (root is not subject to file modes), so
    mailgw running as root in the same test still works on the same data.
    Every ancestor of the data directory must be traversable (``o+x``) by
    ``mail``: put peer data under :func:`make_peer_dir` (fixture ``peer_dir``),
    not under ``tmp_path``.  Postfix delivers as ``mail`` too (virtual(8),
    ``virtual_minimum_uid`` lowered).  As non-root, everything runs as the
    current user and nothing is chowned.

Dovecot settings that make a mailgw data directory servable as is
    passwd-file passdb/userdb with ``scheme=PLAIN username_format=%n`` (mailgw's
    ``{ARGON2ID}``/``{BLF-CRYPT}``/``{PLAIN}`` hashes verify; ``alice@domain``
    logs in as ``alice``), ``default_fields = home=<data_dir>/mail/%n``,
    ``mail_location = maildir:~/Maildir`` (Maildir++ on disk), an ``inbox``
    namespace with separator ``/``, and the default ``pop3_uidl_format``
    (``%08Xu%08Xv``, the UIDL mailgw promises in docs/contracts.md).

Postfix
    ``postfix -c DIR start`` with a main.cf/master.cf written here (smtpd on a
    high port, no chroot, log to ``DIR/maillog`` through postlogd, no DNS for
    the client name).  Either *virtual* mode (``virtual_mailbox_maps`` with a
    fixed user list, Maildir per user) or *sink* mode (a catch-all
    ``virtual_alias_maps`` regexp sends every recipient of every domain to one
    Maildir; ``virtual_alias_domains`` is empty and
    ``smtpd_reject_unlisted_recipient = no``, see /work/shared/PEERS.md).

Both launchers share :class:`PeerDaemon`: start in up to ``START_ATTEMPTS`` attempts
(fresh ports each time), stop with a bounded wait then SIGKILL, ``cleanup`` and
the context manager.  For a store without a mailgw ``users.passwd``,
:meth:`DovecotInstance.with_plain_users` writes a ``{PLAIN}`` passwd-file itself;
:func:`peer_workdir` is :func:`make_peer_dir` removed at the end of a block.

A missing binary raises :class:`PeerUnavailable`; the fixtures turn it into
``pytest.skip(reason)``, which ``tests/conftest.py`` turns into a failure
under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

LOOPBACK = "127.0.0.1"
DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
POSTFIX = "/usr/sbin/postfix"
POSTQUEUE = "/usr/sbin/postqueue"
POSTFIX_DAEMONS = "/usr/lib/postfix/sbin"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
DOVECOT_STOP_GRACE = 0.5  # seconds for a clean Dovecot shutdown before its processes are killed
START_ATTEMPTS = 3  # a probed free port can be taken before the peer binds it


class PeerUnavailable(Exception):
    """A peer cannot be used on this machine (binary or system user missing)."""


class PeerError(RuntimeError):
    """A peer failed to start or to answer; the message holds the tail of its log."""


# --- helpers -------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float, host: str = LOOPBACK) -> bool:
    """True once ``host:port`` accepts a TCP connection, False after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def make_peer_dir(prefix: str = "mailgw-peer-") -> Path:
    """A new directory (0755) that the peers' unprivileged processes can traverse."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@contextlib.contextmanager
def peer_workdir(prefix: str = "mailgw-peer-") -> Iterator[Path]:
    """:func:`make_peer_dir`, removed (with everything in it) when the block ends."""
    path = make_peer_dir(prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_plain_passwd(path: Path, users: Mapping[str, str]) -> Path:
    """Write a Dovecot passwd-file giving ``users`` (name -> password) ``{PLAIN}`` passwords."""
    path.write_text("".join(f"{user}:{{PLAIN}}{pw}::::::\n" for user, pw in users.items()))
    return path


def mail_owner() -> tuple[str, int, int]:
    """(name, uid, gid) the peers handle mail as: ``mail`` as root, else the current user."""
    pw = pwd.getpwnam("mail") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    return pw.pw_name, pw.pw_uid, pw.pw_gid


def chown_tree(root: Path, uid: int, gid: int) -> None:
    """``chown -R uid:gid root`` (no symlink following); a no-op unless root."""
    if os.geteuid() != 0:
        return
    os.lchown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def untraversable_ancestor(path: Path, uid: int, gid: int) -> Path | None:
    """The first ancestor of ``path`` that ``uid``/``gid`` cannot enter, or None."""
    for parent in reversed(path.resolve().parents):
        st = parent.stat()
        if st.st_uid == uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid == gid:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok and uid != 0:
            return parent
    return None


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie counts as gone (the daemons' parent is
    init, which may reap late, e.g. in a container)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat_line.rpartition(")")[2].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.name))
    return found


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _kill_and_wait(pid: int | None, timeout: float) -> None:
    if pid is None or _wait_gone(pid, timeout):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    _wait_gone(pid, 5)


def dovecot_missing() -> str | None:
    """Why Dovecot cannot run here, or None."""
    for binary, package in ((DOVECOT, "dovecot-core"), (DOVEADM, "dovecot-core")):
        if not os.access(binary, os.X_OK):
            return f"{binary} not found (Debian package {package})"
    for lib, package in (("imap", "dovecot-imapd"), ("pop3", "dovecot-pop3d")):
        if not os.access(f"/usr/lib/dovecot/{lib}", os.X_OK):
            return f"/usr/lib/dovecot/{lib} not found (Debian package {package})"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("mail")
        except KeyError:
            return "no 'mail' system user to serve mail as (Dovecot refuses uid 0)"
    return None


def postfix_missing() -> str | None:
    """Why Postfix cannot run here, or None."""
    for binary in (POSTFIX, POSTQUEUE, f"{POSTFIX_DAEMONS}/master"):
        if not os.access(binary, os.X_OK):
            return f"{binary} not found (Debian package postfix)"
    if os.geteuid() != 0:
        return "a private Postfix needs root (postfix -c DIR start)"
    for user in ("postfix", "mail"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"no {user!r} system user"
    return None


# --- what both peers share --------------------------------------------------------------


class PeerDaemon:
    """A daemon with a private configuration directory: started with retries (a probed
    free port can be taken before the daemon binds it), stopped with a bounded wait,
    cleaned up, usable as a context manager.  Subclasses provide :meth:`_attempt`,
    :meth:`_terminate` and ``pid_file`` (the master's pid), and may override :meth:`_prepare`."""

    NAME = "daemon"

    def __init__(
        self, config_dir: Path | None, prefix: str, log_name: str, start_timeout: float
    ) -> None:
        self.start_timeout = start_timeout
        self._own_config_dir = config_dir is None
        self.config_dir = Path(config_dir) if config_dir is not None else make_peer_dir(prefix)
        self.log_path = self.config_dir / log_name
        self.running = False
        self._owner = mail_owner()  # (user, uid, gid) the daemon handles mail as

    def _prepare(self) -> None:
        """Once per :meth:`start`, before the attempts."""

    def _attempt(self) -> str | None:
        """One start on fresh ports: None once the daemon answers, else what went wrong."""
        raise NotImplementedError

    pid_file: Path

    def master_pid(self) -> int | None:
        return _read_pid(self.pid_file)

    def _terminate(self, pid: int) -> None:
        """Ask the master ``pid`` to stop (it is then SIGKILLed after a bounded wait)."""
        raise NotImplementedError

    def start(self) -> Self:
        """Start the daemon and wait until it answers; PeerError after the last attempt."""
        if self.running:
            return self
        self._prepare()
        errors: list[str] = []
        for _ in range(START_ATTEMPTS):
            error = self._attempt()
            if error is None:
                return self
            errors.append(error)
            self.stop()
        raise PeerError(f"{self.NAME} did not start:\n" + "\n---\n".join(errors))

    def stop(self) -> None:
        """Stop the daemon: :meth:`_terminate`, then SIGKILL the master after a bounded wait."""
        pid = self.master_pid()
        if pid is not None:
            self._terminate(pid)
            _kill_and_wait(pid, STOP_TIMEOUT)
        self.running = False

    def cleanup(self) -> None:
        """Stop, and remove the configuration directory if this instance made it."""
        self.stop()
        if self._own_config_dir:
            shutil.rmtree(self.config_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


# --- Dovecot -------------------------------------------------------------------------------

_DOVECOT_CONF = """\
# written by tests/interop/peers.py
base_dir = {cfg}/base
state_dir = {cfg}/state
log_path = {cfg}/dovecot.log
instance_name = {instance}
listen = {host}
protocols = {protocols}
{ssl}
disable_plaintext_auth = {disable_plaintext}
auth_mechanisms = plain login
auth_verbose = yes
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
first_valid_gid = {gid}
default_internal_user = {user}
default_login_user = {user}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {host}
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    address = {host}
    port = {pop3s_port}
    ssl = yes
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {passwd}
  default_fields = home={home} uid={uid} gid={gid}
}}
namespace inbox {{
  inbox = yes
  separator = {separator}
  prefix =
}}
{extra}
"""


class DovecotInstance(PeerDaemon):
    """A private Dovecot serving ``data_dir`` (mailgw layout) on loopback.

    ``passwd_file`` is a Dovecot passwd-file (mailgw's ``users.passwd`` works as
    is); None: ``<config_dir>/users.passwd``, written by the caller before start
    (:meth:`with_plain_users` does that).  ``mail_home_template`` is a Dovecot
    template for a user's home (default ``<data_dir>/mail/%n``, so the Maildir
    is ``<home>/Maildir``).
    With ``ssl_cert``/``ssl_key`` (PEM files) IMAPS and POP3S listen too and
    STARTTLS/STLS are offered.  ``chown=True``: see the module docstring.

    Use ``with DovecotInstance(...) as dc:`` or ``dc.start()`` ... ``dc.stop()``.
    Ports (``imap_port``, ``pop3_port``, ``imaps_port``, ``pop3s_port``) are
    known after start; a disabled protocol or TLS listener has port None.
    """

    NAME = "Dovecot"

    def __init__(
        self,
        data_dir: Path,
        passwd_file: Path | None,
        *,
        mail_home_template: str | None = None,
        ssl_cert: Path | None = None,
        ssl_key: Path | None = None,
        protocols: Sequence[str] = ("imap", "pop3"),
        separator: str = "/",
        chown: bool = True,
        config_dir: Path | None = None,
        extra_conf: str = "",
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        if (ssl_cert is None) != (ssl_key is None):
            raise ValueError("give both ssl_cert and ssl_key, or neither")
        unknown = set(protocols) - {"imap", "pop3"}
        if unknown or not protocols:
            raise ValueError(f"protocols must be a non-empty subset of imap, pop3: {protocols}")
        reason = dovecot_missing()
        if reason is not None:
            raise PeerUnavailable(reason)
        super().__init__(config_dir, "mailgw-dovecot-", "dovecot.log", start_timeout)
        self.data_dir = Path(data_dir).resolve()
        self.passwd_file = (
            Path(passwd_file).resolve()
            if passwd_file is not None
            else self.config_dir.resolve() / "users.passwd"
        )
        self.mail_home_template = mail_home_template or f"{self.data_dir}/mail/%n"
        self.ssl_cert = ssl_cert
        self.ssl_key = ssl_key
        self.protocols = tuple(protocols)
        self.separator = separator
        self.chown = chown
        self.extra_conf = extra_conf
        self.conf_path = self.config_dir / "dovecot.conf"
        self.pid_file = self.config_dir / "base" / "master.pid"
        self.imap_port: int | None = None
        self.pop3_port: int | None = None
        self.imaps_port: int | None = None
        self.pop3s_port: int | None = None

    @classmethod
    def with_plain_users(
        cls, data_dir: Path, users: Mapping[str, str], **kwargs: Any
    ) -> DovecotInstance:
        """An instance (not started: ``with ... as dc``) for ``users`` (name -> password),
        their ``{PLAIN}`` passwd-file in its own configuration directory; homes as usual
        (``<data_dir>/mail/<user>``).  ``kwargs`` as for the constructor."""
        dc = cls(data_dir, None, **kwargs)
        write_plain_passwd(dc.passwd_file, users)
        return dc

    # --- life cycle ------------------------------------------------------------------

    def _prepare(self) -> None:
        user, uid, gid = self._owner
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.chown:
            chown_tree(self.data_dir, uid, gid)
            if os.geteuid() == 0 and self.passwd_file.exists():
                os.lchown(self.passwd_file, uid, gid)
        if os.geteuid() == 0:
            for what in (self.data_dir, self.config_dir):
                blocked = untraversable_ancestor(what / "x", uid, gid)
                if blocked is not None:
                    raise PeerError(
                        f"Dovecot's user {user!r} cannot enter {blocked} (on the way to "
                        f"{what}): put peer data under make_peer_dir() / the peer_dir fixture"
                    )
        for sub in ("base", "state"):
            (self.config_dir / sub).mkdir(exist_ok=True)

    def _write_conf(self) -> None:
        user, uid, gid = self._owner
        tls = self.ssl_cert is not None
        self.imap_port = free_port() if "imap" in self.protocols else None
        self.pop3_port = free_port() if "pop3" in self.protocols else None
        self.imaps_port = free_port() if tls and "imap" in self.protocols else None
        self.pop3s_port = free_port() if tls and "pop3" in self.protocols else None
        ssl = "ssl = no"
        if tls:
            ssl = f"ssl = yes\nssl_cert = <{self.ssl_cert}\nssl_key = <{self.ssl_key}"
        self.conf_path.write_text(
            _DOVECOT_CONF.format(
                cfg=self.config_dir,
                instance=f"mailgw-test-{os.getpid()}-{self.imap_port or self.pop3_port}",
                host=LOOPBACK,
                protocols=" ".join(self.protocols),
                ssl=ssl,
                disable_plaintext="yes" if tls else "no",
                uid=uid,
                gid=gid,
                user=user,
                imap_port=self.imap_port or 0,
                imaps_port=self.imaps_port or 0,
                pop3_port=self.pop3_port or 0,
                pop3s_port=self.pop3s_port or 0,
                passwd=self.passwd_file,
                home=self.mail_home_template,
                separator=self.separator,
                extra=self.extra_conf,
            )
        )

    def _ports(self) -> list[int]:
        ports = (self.imap_port, self.pop3_port, self.imaps_port, self.pop3s_port)
        return [p for p in ports if p is not None]

    def _attempt(self) -> str | None:
        """Write the configuration, start the daemon, wait until every port answers."""
        self._write_conf()
        errfile = self.config_dir / "dovecot.stderr"
        # the daemon inherits stdio: a file, never a pipe we would block on
        with open(errfile, "wb") as err:
            proc = subprocess.run(
                [DOVECOT, "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                timeout=30,
            )
        self.running = proc.returncode == 0
        deadline = time.monotonic() + self.start_timeout
        if self.running and all(
            wait_port(p, max(0.1, deadline - time.monotonic())) for p in self._ports()
        ):
            return None
        return (
            f"dovecot exited {proc.returncode}: "
            f"{errfile.read_text(errors='replace').strip()}\n{_tail(self.log_path)}"
        )

    def _terminate(self, pid: int) -> None:
        if not _alive(pid):
            return
        # SIGTERM is what "doveadm stop" sends.  A login process that is still in its
        # handshake with the stats service when the master stops waits 5 s for it:
        # after a short grace, kill the master's own children (the master last).
        children = _children(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, DOVECOT_STOP_GRACE):
            for child in children + _children(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)

    # --- inspection ------------------------------------------------------------------

    def doveadm(self, *args: str, check: bool = True) -> str:
        """``doveadm -c <conf> ARGS``; stdout.  PeerError (with stderr) when it fails."""
        proc = subprocess.run(
            [DOVEADM, "-c", str(self.conf_path), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and proc.returncode != 0:
            raise PeerError(f"doveadm {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc.stdout

    def mailbox_status(
        self, user: str, mailbox: str = "*", fields: str = "messages uidvalidity uidnext"
    ) -> dict[str, dict[str, int]]:
        """``doveadm mailbox status`` as ``{mailbox: {field: value}}``."""
        out = self.doveadm("mailbox", "status", "-u", user, fields, mailbox)
        n = len(fields.split())
        result: dict[str, dict[str, int]] = {}
        for line in out.splitlines():
            parts = line.split(" ")
            name, values = " ".join(parts[:-n]), parts[-n:]
            result[name] = {k: int(v) for k, v in (f.split("=", 1) for f in values)}
        return result


# --- Postfix -------------------------------------------------------------------------------

_MASTER_CF = """\
# written by tests/interop/peers.py: no chroot, smtpd on a loopback high port only
{host}:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
{extra}
"""

SINK_USER = "sink"


class PostfixInstance(PeerDaemon):
    """A private Postfix accepting mail on ``127.0.0.1:<port>`` into Maildirs.

    Virtual mode (default): ``users`` at ``domain`` are delivered to
    ``<config_dir>/mail/<user>/Maildir/``; other recipients are rejected at RCPT.
    Sink mode (``sink=True``): every recipient of every domain is accepted and
    delivered to ``maildir("sink")``.  ``main_extra`` adds or overrides main.cf
    parameters, ``master_extra`` adds master.cf lines (e.g. a pipe transport).

    Use ``with PostfixInstance(...) as pf:`` or ``pf.start()`` ... ``pf.stop()``.
    """

    NAME = "Postfix"

    def __init__(
        self,
        *,
        users: Iterable[str] = ("alice", "bob"),
        domain: str = "peer.test",
        sink: bool = False,
        hostname: str = "mx.peer.test",
        config_dir: Path | None = None,
        main_extra: Mapping[str, str] | None = None,
        master_extra: str = "",
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        reason = postfix_missing()
        if reason is not None:
            raise PeerUnavailable(reason)
        self.users = tuple(users)
        self.domain = domain
        self.sink = sink
        self.hostname = hostname
        self.main_extra = dict(main_extra or {})
        self.master_extra = master_extra
        super().__init__(config_dir, "mailgw-postfix-", "maillog", start_timeout)
        # postfix-script wants everything under config_directory owned by root: keep the
        # configuration in etc/, next to (not above) the queue, data and mail directories
        self.etc_dir = self.config_dir / "etc"
        self.queue_dir = self.config_dir / "queue"
        self.data_dir = self.config_dir / "data"
        self.mail_base = self.config_dir / "mail"
        self.pid_file = self.queue_dir / "pid" / "master.pid"
        self.port: int = 0

    def maildir(self, user: str = SINK_USER) -> Path:
        """The Maildir of ``user`` (in sink mode, the one Maildir: ``maildir()``)."""
        return self.mail_base / user / "Maildir"

    def messages(self, user: str = SINK_USER) -> list[Path]:
        """Files in ``new/`` and ``cur/`` of ``user``'s Maildir, sorted by name."""
        md = self.maildir(user)
        return sorted(
            p for sub in ("new", "cur") if (md / sub).is_dir() for p in (md / sub).iterdir()
        )

    def wait_for_messages(
        self, count: int, user: str = SINK_USER, timeout: float = 30.0
    ) -> list[Path]:
        """Until ``user`` has at least ``count`` delivered messages (bounded); the files."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages(user)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise PeerError(
                    f"{len(found)} of {count} messages delivered to {user} within {timeout} s\n"
                    f"queue:\n{self.postqueue()}\nlog:\n{_tail(self.log_path)}"
                )
            time.sleep(0.05)

    # --- configuration ---------------------------------------------------------------

    def _main_cf(self, uid: int, gid: int) -> dict[str, str]:
        cfg = self.etc_dir
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": LOOPBACK,
            "inet_protocols": "ipv4",
            "myhostname": self.hostname,
            "mydomain": self.hostname.partition(".")[2] or "peer.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "relayhost": "",
            "relay_domains": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            "smtpd_peername_lookup": "no",
            "smtpd_banner": "$myhostname ESMTP private test Postfix",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtputf8_enable": "no",
            "maillog_file": str(self.log_path),
            "maillog_file_prefixes": str(self.config_dir),
            "syslog_name": f"postfix-test-{self.config_dir.name}",
            "virtual_mailbox_base": str(self.mail_base),
            "virtual_uid_maps": f"static:{uid}",
            "virtual_gid_maps": f"static:{gid}",
            "virtual_minimum_uid": str(uid),
            "virtual_mailbox_maps": f"texthash:{cfg}/vmailbox",
            "recipient_delimiter": "+",
            "message_size_limit": str(60 * 1024 * 1024),
            "virtual_mailbox_limit": "0",
            "mailbox_size_limit": "0",
            "delay_warning_time": "0",
        }
        if self.sink:
            main.update(
                virtual_mailbox_domains="sink.invalid",
                virtual_alias_maps=f"regexp:{cfg}/sink_regexp",
                virtual_alias_domains="",
                smtpd_reject_unlisted_recipient="no",
            )
        else:
            main.update(virtual_mailbox_domains=self.domain)
        main.update(self.main_extra)
        return main

    def _write_conf(self, uid: int, gid: int) -> None:
        cfg = self.etc_dir
        cfg.mkdir(mode=0o755, exist_ok=True)
        main = self._main_cf(uid, gid)
        (cfg / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main.items()))
        (cfg / "master.cf").write_text(
            _MASTER_CF.format(host=LOOPBACK, port=self.port, extra=self.master_extra)
        )
        if self.sink:
            entries = [f"{SINK_USER}@sink.invalid {SINK_USER}/Maildir/"]
            (cfg / "sink_regexp").write_text(f"/^.*$/ {SINK_USER}@sink.invalid\n")
        else:
            entries = [f"{u}@{self.domain} {u}/Maildir/" for u in self.users]
        (cfg / "vmailbox").write_text("\n".join(entries) + "\n")

    # --- life cycle ------------------------------------------------------------------

    def _postfix(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [POSTFIX, "-c", str(self.etc_dir), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def _prepare(self) -> None:
        _, uid, gid = self._owner
        self.mail_base.mkdir(parents=True, exist_ok=True)
        chown_tree(self.mail_base, uid, gid)
        # postfix(1) chdirs into the queue before anything else; "postfix start" then
        # creates the queue subdirectories and the data directory with their owners
        self.queue_dir.mkdir(mode=0o755, exist_ok=True)

    def _attempt(self) -> str | None:
        """Write main.cf/master.cf, ``postfix -c DIR start``, wait until smtpd answers."""
        self.port = free_port()
        self._write_conf(*self._owner[1:])
        proc = self._postfix("start")
        self.running = proc.returncode == 0
        if self.running and wait_port(self.port, self.start_timeout):
            return None
        return (
            f"postfix start exited {proc.returncode}: {proc.stdout}{proc.stderr}\n"
            f"{_tail(self.log_path)}"
        )

    def _terminate(self, pid: int) -> None:
        """``postfix stop``."""
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self._postfix("stop", timeout=STOP_TIMEOUT)

    # --- inspection ------------------------------------------------------------------

    def postqueue(self) -> str:
        """``postqueue -c DIR -p``: the queue listing ("Mail queue is empty" when empty)."""
        proc = subprocess.run(
            [POSTQUEUE, "-c", str(self.etc_dir), "-p"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return proc.stdout + proc.stderr
