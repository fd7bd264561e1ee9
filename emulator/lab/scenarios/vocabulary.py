"""The words of a scenario file, each declared once beside its handler.

A step (``do: ACTION``) and an expectation (``expect: {kind: KIND}``) are words: a name, the keys
it requires and allows, the values some keys may take, and the function that carries it out.
``actions.py`` and ``checks.py`` declare theirs with ``@STEPS.word(...)`` and
``@EXPECTS.word(...)``; the schema validates a file against these same registries, so a word the
runner knows is a word the schema accepts, with the same keys, and the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

H = TypeVar("H", bound=Callable[..., object])


@dataclass(frozen=True)
class Word(Generic[H]):
    name: str
    handler: H
    required: frozenset[str]
    optional: frozenset[str]
    # key -> the values it may take (checked by the schema, with the file's line)
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def keys(self) -> frozenset[str]:
        return self.required | self.optional


class Vocabulary(Generic[H]):
    """Named words of one kind (steps or expectations), filled by the ``word`` decorator."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._words: dict[str, Word[H]] = {}

    def word(
        self,
        name: str,
        *,
        required: Iterable[str] = (),
        optional: Iterable[str] = (),
        choices: Mapping[str, Iterable[str]] | None = None,
    ) -> Callable[[H], H]:
        def declare(handler: H) -> H:
            self.add(name, handler, required=required, optional=optional, choices=choices)
            return handler

        return declare

    def add(
        self,
        name: str,
        handler: H,
        *,
        required: Iterable[str] = (),
        optional: Iterable[str] = (),
        choices: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        if name in self._words:
            raise ValueError(f"{self.what} {name!r} is declared twice")
        self._words[name] = Word(
            name,
            handler,
            frozenset(required),
            frozenset(optional),
            {key: tuple(values) for key, values in (choices or {}).items()},
        )

    def __getitem__(self, name: str) -> Word[H]:
        return self._words[name]

    def __contains__(self, name: object) -> bool:
        return name in self._words

    def __iter__(self) -> Iterator[str]:
        return iter(self._words)

    def names(self) -> list[str]:
        return list(self._words)
