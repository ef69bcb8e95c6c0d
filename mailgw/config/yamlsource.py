"""YAML parsing that remembers where every key and value came from.

``parse_yaml`` builds plain Python values, except that mappings are
``LineDict`` and sequences are ``LineList``: they carry the 1-based line of
the collection itself, of each key and of each value/item (taken from the
nodes' ``start_mark`` while a ``SafeLoader`` subclass constructs them).
Duplicate keys, which PyYAML silently keeps the last of, are recorded so
the loader can report them.  YAML syntax errors become ``ConfigError`` with
the file and line.
"""

from __future__ import annotations

from typing import Any

import yaml

from mailgw.errors import ConfigError


class LineDict(dict[Any, Any]):
    """A mapping with the source lines of itself, its keys and its values."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[Any, int] = {}
        self.value_lines: dict[Any, int] = {}
        self.duplicates: list[tuple[Any, int]] = []


class LineList(list[Any]):
    """A sequence with the source lines of itself and of each item."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings and sequences record ``node.start_mark``."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    explicit = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)  # resolves "<<" merge keys; merged pairs come first
    merged = len(node.value) - explicit
    result = LineDict(node.start_mark.line + 1)
    explicit_keys: set[Any] = set()
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found an unhashable key",
                key_node.start_mark,
            ) from None
        key_line = key_node.start_mark.line + 1
        if index >= merged:  # explicit keys may override merged ones, not each other
            if key in explicit_keys:
                result.duplicates.append((key, key_line))
            explicit_keys.add(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_line
        result.value_lines[key] = value_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    result = LineList(node.start_mark.line + 1)
    for item_node in node.value:
        result.append(loader.construct_object(item_node, deep=True))
        result.item_lines.append(item_node.start_mark.line + 1)
    return result


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def parse_yaml(data: bytes, file: str) -> Any:
    """Parse one YAML document; ``ConfigError`` names ``file`` and the line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = data[: exc.start].count(b"\n") + 1
        raise ConfigError("the file is not UTF-8 text", file=file, line=bad_line) from None
    try:
        return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        if exc.context:
            problem = f"{problem} ({exc.context}"
            if exc.context_mark is not None and exc.context_mark is not mark:
                problem += f" at line {exc.context_mark.line + 1}"
            problem += ")"
        where = mark.line + 1 if mark is not None else None
        raise ConfigError(f"YAML syntax error: {problem}", file=file, line=where) from None
    except yaml.reader.ReaderError as exc:  # control characters and the like
        char_line = text[: exc.position].count("\n") + 1
        raise ConfigError(
            f"YAML error: unacceptable character #x{exc.character:04x}", file=file, line=char_line
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"YAML error: {exc}", file=file) from None
