"""A registry of named strategies (selectors, pruners, methods): the project's own entries are registered
where they are defined, a researcher's from their own module, with the same call (ARCHITECTURE.md)."""
from __future__ import annotations

from typing import Generic, Iterator, Protocol, TypeVar

from prac.errors import UserError


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind  # "method", "selector", ...: named in errors
        self._entries: dict[str, T] = {}

    def register(self, entry: T) -> T:
        """Add `entry` under its name (a name registered twice is a mistake: two modules disagree)."""
        if entry.name in self._entries:
            raise ValueError(f"{self.kind} '{entry.name}' is registered already")
        self._entries[entry.name] = entry
        return entry

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise UserError(f"unknown {self.kind} '{name}' (known: {', '.join(self._entries)})")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def items(self):
        return self._entries.items()

    def values(self):
        return self._entries.values()
