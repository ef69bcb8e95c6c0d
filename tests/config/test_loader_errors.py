"""Every configuration error names the file, the line and the dotted key.

Each case is a whole YAML file; the line the error must point at carries the
comment ``# <-`` (or the case gives the line number), so the table stays
readable and the expected line cannot drift from the text.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mailgw.config.loader import load_config
from mailgw.errors import EXIT_USAGE, ConfigError

HEAD = """\
domains: [a.example, b.example]
tls:
  cert: cert.pem
  key: key.pem
"""

ONE_LISTENER = """\
listeners:
  - protocol: smtp
    address: 127.0.0.1
    port: 2525
"""

CASES: list[tuple[str, str, str, str]] = [
    # id, yaml, expected key, expected message fragment
    (
        "top-level typo",
        HEAD + "listners:  # <-\n  - {protocol: smtp, address: 127.0.0.1, port: 25}\n",
        "listners",
        "unknown key 'listners'; did you mean 'listeners'?",
    ),
    (
        "listener key typo",
        HEAD
        + """\
listeners:
  - protocol: smtp
    address: 127.0.0.1
    port: 25
  - prtocol: pop3  # <-
    address: 127.0.0.1
    port: 110
""",
        "listeners[1].prtocol",
        "did you mean 'protocol'?",
    ),
    (
        "unknown key without a close match lists the valid ones",
        HEAD + ONE_LISTENER + "zzzzzz: 1  # <-\n",
        "zzzzzz",
        "valid keys: data_dir, hostname, domains",
    ),
    (
        "limits typo",
        HEAD + ONE_LISTENER + "limits:\n  max_recipents: 5  # <-\n",
        "limits.max_recipents",
        "did you mean 'max_recipients'?",
    ),
    (
        "port not a number",
        HEAD + "listeners:\n  - protocol: smtp\n    address: 127.0.0.1\n    port: abc  # <-\n",
        "listeners[0].port",
        "expected an integer, got string 'abc'",
    ),
    (
        "port out of range",
        HEAD + "listeners:\n  - protocol: smtp\n    address: 127.0.0.1\n    port: 70000  # <-\n",
        "listeners[0].port",
        "must be between 0 and 65535, got 70000",
    ),
    (
        "port boolean",
        HEAD + "listeners:\n  - protocol: smtp\n    address: 127.0.0.1\n    port: yes  # <-\n",
        "listeners[0].port",
        "got boolean true",
    ),
    (
        "bad IPv4 address",
        HEAD + "listeners:\n  - protocol: smtp\n    address: 999.1.1.1  # <-\n    port: 25\n",
        "listeners[0].address",
        "not an IP address",
    ),
    (
        "host name instead of address",
        HEAD + "listeners:\n  - protocol: smtp\n    address: localhost  # <-\n    port: 25\n",
        "listeners[0].address",
        "host names are not accepted",
    ),
    (
        "unknown protocol",
        HEAD + "listeners:\n  - protocol: http  # <-\n    address: 127.0.0.1\n    port: 25\n",
        "listeners[0].protocol",
        "expected one of: smtp, submission, pop3, imap",
    ),
    (
        "unknown tls mode",
        HEAD
        + "listeners:\n  - protocol: smtp\n    address: 127.0.0.1\n    port: 25\n"
        + "    tls: ssl  # <-\n",
        "listeners[0].tls",
        "expected one of: none, starttls, implicit",
    ),
    (
        "tls: off is a YAML boolean",
        HEAD
        + "listeners:\n  - protocol: smtp\n    address: 127.0.0.1\n    port: 25\n"
        + "    tls: off  # <-\n",
        "listeners[0].tls",
        "quote the value",
    ),
    (
        "starttls without a tls section",
        "domains: [a.example]\n"
        + "listeners:\n  - protocol: smtp\n    address: 127.0.0.1\n    port: 25\n"
        + "    tls: starttls  # <-\n",
        "listeners[0].tls",
        "needs a top-level 'tls:' section",
    ),
    (
        "implicit TLS without a tls section",
        "domains: [a.example]\n"
        + "listeners:\n  - {protocol: pop3, address: 127.0.0.1, port: 995, tls: implicit}  # <-\n",
        "listeners[0].tls",
        "TLS mode 'implicit' needs",
    ),
    (
        "missing certificate file",
        "domains: [a.example]\ntls:\n  cert: missing.pem  # <-\n  key: key.pem\n" + ONE_LISTENER,
        "tls.cert",
        "file not found",
    ),
    (
        "missing key entry",
        "domains: [a.example]\ntls:  # <-\n  cert: cert.pem\n" + ONE_LISTENER,
        "tls.key",
        "required key is missing",
    ),
    (
        "duplicate listener name",
        HEAD
        + """\
listeners:
  - {name: mx, protocol: smtp, address: 127.0.0.1, port: 25}
  - {name: mx, protocol: smtp, address: 127.0.0.1, port: 26}  # <-
""",
        "listeners[1].name",
        "duplicate listener name 'mx' (also listeners[0])",
    ),
    (
        "duplicate default listener name",
        HEAD
        + """\
listeners:
  - {protocol: smtp, address: 127.0.0.1, port: 25}
  - {protocol: smtp, address: 127.0.0.2, port: 25}  # <-
""",
        "listeners[1].name",
        "duplicate listener name 'smtp-25'",
    ),
    (
        "duplicate address and port",
        HEAD
        + """\
listeners:
  - {name: a, protocol: smtp, address: 127.0.0.1, port: 25}
  - name: b
    protocol: submission
    address: 127.0.0.1
    port: 25  # <-
""",
        "listeners[1].port",
        "127.0.0.1:25 is already used by listeners[0]",
    ),
    (
        "same IPv6 address spelled differently",
        HEAD
        + """\
listeners:
  - {name: a, protocol: smtp, address: "::1", port: 25}
  - {name: b, protocol: smtp, address: "0:0::1", port: 25}  # <-
""",
        "listeners[1].port",
        "[::1]:25 is already used",
    ),
    (
        "wildcard overlap",
        HEAD
        + """\
listeners:
  - {name: a, protocol: smtp, address: 0.0.0.0, port: 25}
  - {name: b, protocol: smtp, address: 192.168.1.10, port: 25}  # <-
""",
        "listeners[1].port",
        "overlaps the wildcard listener listeners[0]",
    ),
    (
        "listener not a mapping",
        HEAD + "listeners:\n  - smtp  # <-\n",
        "listeners[0]",
        "expected a mapping, got string 'smtp'",
    ),
    (
        "listener without port",
        HEAD + "listeners:\n  - protocol: smtp  # <-\n    address: 127.0.0.1\n",
        "listeners[0].port",
        "required key is missing",
    ),
    (
        "relay network not CIDR",
        HEAD + ONE_LISTENER + "relay_networks:\n  - 10.0.0.0/8\n  - lan  # <-\n",
        "relay_networks[1]",
        "not a network in CIDR notation",
    ),
    (
        "relay network with host bits",
        HEAD + ONE_LISTENER + "relay_networks: [192.168.1.5/24]  # <-\n",
        "relay_networks[0]",
        "has host bits set",
    ),
    (
        "bad domain",
        "domains:\n  - a.example\n  - bad_domain!  # <-\n" + ONE_LISTENER,
        "domains[1]",
        "not a valid host name",
    ),
    (
        "domains not a list",
        "domains: a.example  # <-\n" + ONE_LISTENER,
        "domains",
        "expected a list, got string 'a.example'",
    ),
    (
        "alias for a foreign domain",
        HEAD + ONE_LISTENER + "aliases:\n  info@other.example: alice  # <-\n",
        "aliases.info@other.example",
        "domain 'other.example' is not in domains (a.example, b.example)",
    ),
    (
        "alias target in a foreign domain",
        HEAD
        + ONE_LISTENER
        + "aliases:\n  info@a.example:\n    - alice\n    - bob@other.example  # <-\n",
        "aliases.info@a.example[1]",
        "domain 'other.example' is not in domains",
    ),
    (
        "alias target not a user name",
        HEAD + ONE_LISTENER + "aliases:\n  info@a.example: 'no such user'  # <-\n",
        "aliases.info@a.example",
        "not a user name or local address",
    ),
    (
        "catch-all for a foreign domain",
        HEAD + ONE_LISTENER + "catch_all:\n  other.example: alice  # <-\n",
        "catch_all.other.example",
        "domain 'other.example' is not in domains",
    ),
    (
        "catch-all target in a foreign domain",
        HEAD + ONE_LISTENER + "catch_all:\n  a.example: bob@other.example  # <-\n",
        "catch_all.a.example",
        "not in domains",
    ),
    (
        "negative limit",
        HEAD + ONE_LISTENER + "limits:\n  max_recipients: -1  # <-\n",
        "limits.max_recipients",
        "must be at least 1",
    ),
    (
        "line length below the RFC minimum",
        HEAD + ONE_LISTENER + "limits:\n  smtp_line_length: 100  # <-\n",
        "limits.smtp_line_length",
        "must be at least 512",
    ),
    (
        "float limit as string",
        HEAD + ONE_LISTENER + "limits:\n  auth_failure_delay: soon  # <-\n",
        "limits.auth_failure_delay",
        "expected a number",
    ),
    (
        "log level",
        HEAD + ONE_LISTENER + "log_level: loud  # <-\n",
        "log_level",
        "expected one of: debug, info, warning, error",
    ),
    (
        "trusted as a string",
        HEAD
        + "listeners:\n  - protocol: smtp\n    address: 127.0.0.1\n    port: 25\n"
        + "    trusted: 'yes'  # <-\n",
        "listeners[0].trusted",
        "expected true or false",
    ),
    (
        "data_dir not a string",
        HEAD + ONE_LISTENER + "data_dir: 5  # <-\n",
        "data_dir",
        "expected a non-empty string, got integer 5",
    ),
    (
        "duplicate top-level key",
        HEAD + ONE_LISTENER + "domains: [c.example]  # <-\n",
        "domains",
        "duplicate key",
    ),
    (
        "bad listener name",
        HEAD
        + "listeners:\n  - protocol: smtp\n    address: 127.0.0.1\n    port: 25\n"
        + "    name: 'my listener'  # <-\n",
        "listeners[0].name",
        "listener names are",
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error_names_file_line_and_key(
    write_config: Callable[[str], Path],
    cert_files: tuple[Path, Path],
    text: str,
    key: str,
    fragment: str,
) -> None:
    marked = [i + 1 for i, line in enumerate(text.splitlines()) if line.endswith("# <-")]
    assert len(marked) == 1, "each case marks exactly one line"
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert error.file == str(path)
    assert error.key == key
    assert error.line == marked[0], str(error)
    assert fragment in error.detail
    assert str(error) == f"{path}:{marked[0]}: {key}: {error.detail}"
    assert error.exit_code == EXIT_USAGE


def test_missing_required_top_level_key(write_config: Callable[[str], Path]) -> None:
    path = write_config("domains: [a.example]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.line, info.value.key) == (1, "listeners")
    assert "required key is missing" in str(info.value)


def test_empty_file(write_config: Callable[[str], Path]) -> None:
    path = write_config("# nothing here\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.file == str(path)
    assert "empty" in str(info.value)


def test_top_level_not_a_mapping(write_config: Callable[[str], Path]) -> None:
    path = write_config("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping, got a list"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("domains: [a.example\nlisteners: []\n", 2),  # unclosed flow sequence
        ("domains:\n  - a\n bad: indentation\n", 3),
        ("domains: [a]\nlisteners:\n\t- tab\n", 3),
        ("a: b\nc: &x\nd: *y\n", 3),  # unknown alias
    ],
)
def test_yaml_syntax_error_names_file_and_line(
    write_config: Callable[[str], Path], text: str, line: int
) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.file == str(path)
    assert info.value.line == line, str(info.value)
    assert str(info.value).startswith(f"{path}:{line}: YAML")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"domains: [a.example]\nhostname: caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.line, info.value.file) == (2, str(path))


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.file == str(path)
    assert "cannot read" in str(info.value)


def test_cert_path_is_a_directory(
    write_config: Callable[[str], Path], tmp_path: Path, cert_files: tuple[Path, Path]
) -> None:
    (tmp_path / "certdir").mkdir()
    path = write_config(
        "domains: [a.example]\ntls:\n  cert: certdir\n  key: key.pem\n" + ONE_LISTENER
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.key, info.value.line) == ("tls.cert", 3)
    assert "not a regular file" in str(info.value)
