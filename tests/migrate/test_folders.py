"""Folder planning: filters, --map, SPECIAL-USE, separators, single-folder sources."""

from __future__ import annotations

import pytest

from mailgw.errors import UsageError
from mailgw.migrate.folders import FolderPair, plan_folders
from mailgw.migrate.model import FolderInfo, MigrateOptions


def names(pairs: list[FolderPair]) -> dict[str, str]:
    return {p.source_text: p.destination_text for p in pairs}


SRC = [
    FolderInfo(("INBOX",)),
    FolderInfo(("Sent Items",), "\\Sent"),
    FolderInfo(("Sent Items", "2019")),
    FolderInfo(("Deleted Items",), "\\Trash"),
    FolderInfo(("Projects",), selectable=False),
    FolderInfo(("Projects", "A")),
    FolderInfo(("Projects", "B")),
    FolderInfo(("Junk",), "\\Junk"),
]
DST = [
    FolderInfo(("INBOX",)),
    FolderInfo(("Sent",), "\\Sent"),
    FolderInfo(("Trash",), "\\Trash"),
]


def test_default_all_folders_special_use_mapped() -> None:
    pairs = plan_folders(SRC, DST, MigrateOptions(), "/")
    assert names(pairs) == {
        "INBOX": "INBOX",
        "Sent Items": "Sent",
        "Sent Items/2019": "Sent/2019",  # children follow their parent
        "Deleted Items": "Trash",
        "Projects": "Projects",
        "Projects/A": "Projects/A",
        "Projects/B": "Projects/B",
        "Junk": "Junk",  # no \Junk at the destination: kept, created with the use
    }
    by = {p.source_text: p for p in pairs}
    assert by["Junk"].special_use == "\\Junk"
    assert by["Projects"].copy is False and by["Projects/A"].copy is True


def test_include_exclude() -> None:
    o = MigrateOptions(include=["^Projects"], exclude=["/B$"])
    assert names(plan_folders(SRC, DST, o, "/")) == {
        "Projects": "Projects",
        "Projects/A": "Projects/A",
    }
    o = MigrateOptions(exclude=["^(Junk|Sent Items)"])
    assert set(names(plan_folders(SRC, DST, o, "/"))) == {
        "INBOX",
        "Deleted Items",
        "Projects",
        "Projects/A",
        "Projects/B",
    }


def test_map_with_children_beats_special_use() -> None:
    o = MigrateOptions(folder_map={"Projects": "Archive/Old", "Sent Items": "Sent Old"})
    got = names(plan_folders(SRC, DST, o, "/"))
    assert got["Projects/A"] == "Archive/Old/A"
    assert got["Projects"] == "Archive/Old"
    assert got["Sent Items"] == "Sent Old"
    assert got["Sent Items/2019"] == "Sent Old/2019"


def test_longest_map_prefix_wins() -> None:
    o = MigrateOptions(folder_map={"Projects": "P", "Projects/A": "Alpha"})
    got = names(plan_folders(SRC, DST, o, "/"))
    assert got["Projects/A"] == "Alpha" and got["Projects/B"] == "P/B"


def test_separator_in_part_replaced() -> None:
    src = [FolderInfo(("INBOX",)), FolderInfo(("a.b", "c"))]
    pairs = plan_folders(src, [], MigrateOptions(), ".")
    p = pairs[1]
    assert p.destination == ("a_b", "c")
    assert p.note is not None and "a_b" in p.note
    assert pairs[0].note is None


def test_inbox_case_insensitive() -> None:
    pairs = plan_folders(
        [FolderInfo(("Inbox",)), FolderInfo(("inbox", "x"))], [], MigrateOptions(), "/"
    )
    assert [p.destination for p in pairs] == [("INBOX",), ("INBOX", "x")]


def test_single_folder_source_to_dst_folder() -> None:
    src = [FolderInfo(("INBOX",))]
    assert names(plan_folders(src, DST, MigrateOptions(), "/")) == {"INBOX": "INBOX"}
    o = MigrateOptions(dst_folder="Imported/POP")
    assert names(plan_folders(src, DST, o, ".")) == {"INBOX": "Imported/POP"}


def test_dst_folder_with_multi_folder_source_maps_inbox() -> None:
    o = MigrateOptions(dst_folder="Old")
    got = names(plan_folders(SRC, DST, o, "/"))
    assert got["INBOX"] == "Old" and got["Projects/A"] == "Projects/A"


def test_bad_regex_and_map_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        plan_folders(SRC, DST, MigrateOptions(include=["("]), "/")
    with pytest.raises(UsageError):
        plan_folders(SRC, DST, MigrateOptions(folder_map={"A//B": "X"}), "/")
