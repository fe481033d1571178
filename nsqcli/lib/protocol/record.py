"""Frozen value objects for the protocol core, built without the dataclasses module.

The core's events, parsed commands and IDENTIFY responses are small immutable records that tests
compare. dataclasses would write them, but importing it (it pulls in inspect, ast and tokenize)
and generating each class costs about a tenth of a one-message ``nsq-pub`` run. A subclass names
its fields in ``__slots__`` (in order) and the optional ones in ``_defaults``; this base gives
keyword/positional construction, equality, hashing, a readable repr and immutability.
Hot records (one per frame) define their own ``__init__`` with :data:`set_field`.
"""

from __future__ import annotations

from typing import Any, ClassVar

set_field = object.__setattr__  # how a record's own __init__ assigns its (frozen) fields


class Record:
    __slots__ = ()
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        names: tuple[str, ...] = self.__slots__
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes at most {len(names)} arguments")
        for name, value in zip(names, args):
            set_field(self, name, value)
        for name in names[len(args):]:
            if name in kwargs:
                set_field(self, name, kwargs.pop(name))
            elif name in self._defaults:
                set_field(self, name, self._defaults[name])
            else:
                raise TypeError(f"{type(self).__name__}() missing argument {name!r}")
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got unexpected arguments {sorted(kwargs)}")

    def _values(self) -> tuple[Any, ...]:
        names: tuple[str, ...] = self.__slots__
        return tuple(getattr(self, name) for name in names)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self) or not isinstance(other, Record):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        names: tuple[str, ...] = self.__slots__
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__name__}({fields})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name!r}")
