"""YAML with line numbers: a scenario file's values remember where they were written.

``load_located`` composes the document with PyYAML's safe loader and keeps each node's start mark,
so the schema (``schema``) can say "scenarios/s1.yaml:42: steps[3].do: unknown action 'cutt'"
instead of a bare KeyError. Mappings become :class:`LocatedMap` (a dict with the line of the
mapping and of each key), sequences :class:`LocatedList`, scalars their Python value.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from emulator.lab.errors import LabError


class YamlSyntaxError(LabError, ValueError):
    """The file is not YAML at all; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class LocatedMap(dict[str, Any]):
    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LocatedList(list[Any]):
    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


def line_of(value: Any, default: int = 0) -> int:
    return int(getattr(value, "line", default))


def load_located(text: str) -> Any:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise YamlSyntaxError(line, f"not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(0, f"not valid YAML: {exc}") from None
    if node is None:
        return None
    return _convert(node, SafeConstructor())


def _convert(node: Node, constructor: SafeConstructor) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, MappingNode):
        constructor.flatten_mapping(node)  # merge keys (<<: *anchor)
        mapping = LocatedMap(line)
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float):
                raise YamlSyntaxError(key_node.start_mark.line + 1, "mapping keys must be scalars")
            mapping[str(key)] = _convert(value_node, constructor)
            mapping.key_lines[str(key)] = key_node.start_mark.line + 1
        return mapping
    if isinstance(node, SequenceNode):
        items = LocatedList(line)
        for item in node.value:
            items.append(_convert(item, constructor))
            items.item_lines.append(item.start_mark.line + 1)
        return items
    assert isinstance(node, ScalarNode)
    try:
        return constructor.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(line, f"bad value: {exc}") from None
