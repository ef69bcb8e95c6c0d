"""CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB STATUS NAMESPACE."""

from __future__ import annotations

import imaplib

from tests.servers.imap.imap_fixtures import ImapHarness, imap_fixture  # noqa: F401

MSG = b"From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n"


def names(data: list[bytes]) -> dict[str, bytes]:
    """LIST lines -> {name: attributes}."""
    out = {}
    for line in data:
        attrs, _, rest = line.partition(b") ")
        name = rest.split(b" ", 1)[1].strip(b'"')
        out[name.decode()] = attrs + b")"
    return out


def test_create_list_delete(imap: ImapHarness) -> None:
    client = imap.client(imap.start())
    assert client.create("Projects/2024")[0] == "OK"
    assert client.create("Notes/")[0] == "OK"  # trailing separator dropped
    _, data = client.list()
    listed = names(data)
    assert b"\\Noselect" in listed["Projects"] and b"\\HasChildren" in listed["Projects"]
    assert b"\\HasNoChildren" in listed["Projects/2024"] and "Notes" in listed
    assert b"\\Sent" in listed["Sent"]
    _, data = client.list('""', "%")
    assert "Projects/2024" not in names(data) and "Projects" in names(data)
    _, data = client.list("Projects/", "%")
    assert list(names(data)) == ["Projects/2024"]
    _, data = client.list('""', "inbox")
    assert list(names(data)) == ["INBOX"]
    _typ, data = client.list('""', '""')
    assert data == [b'(\\Noselect) "/" ""']
    assert client.create("INBOX")[0] == "NO"
    assert client.create("Notes")[0] == "NO"
    assert client.delete("INBOX")[0] == "NO"
    assert client.delete("Notes")[0] == "OK"
    assert client.delete("Notes")[0] == "NO"
    assert "Notes" not in names(client.list()[1])


def test_rename_and_inbox_rename(imap: ImapHarness) -> None:
    imap.deliver(MSG)
    client = imap.client(imap.start())
    client.create("A")
    client.create("A/B")
    assert client.rename("A", "C")[0] == "OK"
    listed = names(client.list()[1])
    assert "C/B" in listed and "A/B" not in listed
    assert client.rename("INBOX", "Old")[0] == "OK"
    assert client.status("Old", "(MESSAGES)")[1] == [b"Old (MESSAGES 1)"]
    assert client.status("INBOX", "(MESSAGES)")[1] == [b"INBOX (MESSAGES 0)"]
    assert client.rename("Nope", "X")[0] == "NO"
    typ, data = client.rename("Old", "C")
    assert typ == "NO" and b"ALREADYEXISTS" in data[0]


def test_subscribe_lsub_and_list_extended(imap: ImapHarness) -> None:
    client = imap.client(imap.start())
    client.create("Work")
    assert client.subscribe("Work")[0] == "OK"
    _, data = client.lsub('""', "*")
    subscribed = names(data)
    assert "Work" in subscribed and "Sent" in subscribed
    assert client.unsubscribe("Work")[0] == "OK"
    assert "Work" not in names(client.lsub('""', "*")[1])
    client.subscribe("Gone")  # RFC 3501 6.3.6: may subscribe to a name that does not exist
    typ, data = client._simple_command("LIST", "(SUBSCRIBED)", '""', '"*"')  # type: ignore[attr-defined]
    _, data = client._untagged_response(typ, data, "LIST")  # type: ignore[attr-defined]
    listed = names(data)
    assert b"\\Subscribed" in listed["Sent"] and b"\\NonExistent" in listed["Gone"]
    assert "Work" not in listed
    typ, data = client._simple_command(  # type: ignore[attr-defined]
        "LIST", "(SPECIAL-USE)", '""', '"*"', "RETURN", "(SPECIAL-USE)"
    )
    _, data = client._untagged_response(typ, data, "LIST")  # type: ignore[attr-defined]
    assert set(names(data)) == {"Sent", "Drafts", "Trash", "Junk", "Archive"}


def test_list_status_and_status(imap: ImapHarness) -> None:
    imap.deliver(MSG)
    imap.deliver(MSG)
    port = imap.start()
    raw = imap.raw(port)
    raw.login()
    lines = raw.cmd(b"a1", b'LIST "" "INBOX" RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))')
    assert lines[0] == b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
    assert lines[1] == b"* STATUS INBOX (MESSAGES 2 UNSEEN 2 UIDNEXT 3)\r\n"
    assert lines[2].startswith(b"a1 OK")
    lines = raw.cmd(b"a2", b"STATUS INBOX (MESSAGES RECENT UIDVALIDITY SIZE)")
    assert lines[0].startswith(b"* STATUS INBOX (MESSAGES 2 RECENT 2 UIDVALIDITY ")
    assert raw.cmd(b"a3", b"STATUS Nope (MESSAGES)")[-1].startswith(b"a3 NO [NONEXISTENT]")


def test_namespace(imap: ImapHarness) -> None:
    client = imap.client(imap.start())
    assert client.namespace() == ("OK", [b'(("" "/")) NIL NIL'])


def test_utf7_names_round_trip(imap: ImapHarness) -> None:
    client = imap.imapclient(imap.start())
    client.create_folder("Données")
    assert client.folder_exists("Données")
    assert "Données" in [name for _, _, name in client.list_folders()]
    client.select_folder("Données")


def test_imaplib_errors_are_no_not_bad(imap: ImapHarness) -> None:
    client = imap.client(imap.start())
    try:
        client.select("Missing")
    except imaplib.IMAP4.error:  # pragma: no cover - imaplib returns NO, not raise
        raise
    assert client.select("Missing")[0] == "NO"
