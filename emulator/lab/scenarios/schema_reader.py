"""A scenario file's validation errors and the checks that raise them with the file and line.

``ScenarioError`` reads ``path:line: where: what``; ``Reader`` knows the file and the topology's
service and link names, and checks one located YAML value (``yamlnodes``) at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from emulator.lab.errors import LabError
from emulator.lab.scenarios.vocabulary import H, Vocabulary, Word
from emulator.lab.scenarios.yamlnodes import LocatedList, LocatedMap, line_of


class ScenarioError(LabError, ValueError):
    """A scenario file that cannot be run: ``str()`` is ``path:line: where: what``."""

    def __init__(self, path: Path | str, line: int, where: str, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.where = where
        self.message = message
        location = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{location}: {where + ': ' if where else ''}{message}")


class Reader:
    """Validation helpers that know the file and raise ``ScenarioError`` with the line."""

    def __init__(self, path: Path, services: Iterable[str], links: Iterable[str]) -> None:
        self.path = path
        self.services = set(services)
        self.links = set(links)

    def fail(self, line: int, where: str, message: str) -> ScenarioError:
        return ScenarioError(self.path, line, where, message)

    def mapping(self, value: Any, where: str, line: int) -> LocatedMap:
        if not isinstance(value, LocatedMap):
            raise self.fail(line_of(value, line), where, f"must be a mapping, got {_kind(value)}")
        return value

    def keys(
        self, body: LocatedMap, where: str, required: Iterable[str], optional: Iterable[str]
    ) -> None:
        allowed = set(required) | set(optional)
        for key in body:
            if key not in allowed:
                shown = ", ".join(sorted(allowed)) or "none"
                raise self.fail(body.line_of(key), f"{where}.{key}", f"unknown key; valid: {shown}")
        for key in required:
            if key not in body:
                raise self.fail(body.line, where, f"missing required key {key!r}")

    def text(self, body: LocatedMap, key: str, where: str, choices: Iterable[str] = ()) -> str:
        value = body[key]
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.fail(
                body.line_of(key), f"{where}.{key}", f"must be text, got {_kind(value)}"
            )
        text = str(value)
        valid = list(choices)
        if valid and text not in valid:
            raise self.fail(
                body.line_of(key), f"{where}.{key}", f"{text!r} is not one of {', '.join(valid)}"
            )
        return text

    def number(self, body: LocatedMap, key: str, where: str) -> float:
        value = body[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.fail(
                body.line_of(key), f"{where}.{key}", f"must be a number >= 0, got {value!r}"
            )
        return float(value)

    def flag(self, body: LocatedMap, key: str, where: str) -> bool:
        value = body[key]
        if not isinstance(value, bool):
            raise self.fail(
                body.line_of(key), f"{where}.{key}", f"must be true or false, got {value!r}"
            )
        return value

    def names(self, body: LocatedMap, key: str, where: str, valid: Iterable[str]) -> list[str]:
        value = body[key]
        items = value if isinstance(value, LocatedList) else [value]
        known = set(valid)
        out = []
        for item in items:
            if not isinstance(item, str) or (known and item not in known):
                shown = ", ".join(sorted(known))
                raise self.fail(
                    body.line_of(key), f"{where}.{key}", f"unknown name {item!r}; valid: {shown}"
                )
            out.append(item)
        return out

    def word(
        self, body: LocatedMap, head: str, where: str, vocabulary: Vocabulary[H]
    ) -> tuple[Word[H], dict[str, Any]]:
        """The word named by ``body[head]`` (a step's ``do``, an expectation's ``kind``), with its
        keys and the values of its choice keys checked; returns it and its parameters."""
        word = vocabulary[self.text(body, head, where, vocabulary)]
        self.keys(body, where, word.required | {head}, word.optional)
        for key, valid in word.choices.items():
            if key in body:
                self.text(body, key, where, valid)
        return word, {key: value for key, value in body.items() if key != head}


def _kind(value: Any) -> str:
    if isinstance(value, LocatedMap):
        return "a mapping"
    if isinstance(value, LocatedList):
        return "a list"
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"
