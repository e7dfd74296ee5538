"""Slot-based state for streaming kernels, exported to and restored from plain data.

A :class:`Component` keeps its whole state in ``__slots__``. ``state_dict()`` returns
plain Python data (floats, ints, lists, nested dicts) that pickles, ``torch.save``-s and
JSON-encodes (with NaN allowed); ``load_state_dict()`` restores it so the component
continues bit for bit where the saved one stopped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any


class Component:
    """Base class of the streaming kernels: state lives in ``__slots__``."""

    __slots__ = ()

    def state_dict(self) -> dict[str, Any]:
        """The complete state as plain data (a deep copy)."""
        return {name: _export(getattr(self, name)) for name in slot_names(type(self))}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state produced by ``state_dict()`` of the same component type."""
        names = slot_names(type(self))
        if set(state) != set(names):
            raise ValueError(
                f"{type(self).__name__}: state keys {sorted(state)} != expected {sorted(names)}"
            )
        for name in names:
            setattr(self, name, _restore(getattr(self, name), state[name]))


_SLOT_NAMES: dict[type, tuple[str, ...]] = {}


def slot_names(cls: type) -> tuple[str, ...]:
    """All slot names of ``cls`` and its bases, base classes first (cached)."""
    names = _SLOT_NAMES.get(cls)
    if names is None:
        collected: list[str] = []
        for klass in reversed(cls.__mro__):
            slots = klass.__dict__.get("__slots__", ())
            collected.extend((slots,) if isinstance(slots, str) else slots)
        names = _SLOT_NAMES[cls] = tuple(collected)
    return names


def _export(value: Any) -> Any:
    if isinstance(value, Component):
        return value.state_dict()
    if isinstance(value, deque | list):
        return list(value)
    return value


def _restore(current: Any, saved: Any) -> Any:
    if isinstance(current, Component):
        current.load_state_dict(saved)
        return current
    if isinstance(current, deque):
        return deque((float(x) for x in saved), maxlen=current.maxlen)
    if isinstance(current, list):
        return [float(x) for x in saved]
    if isinstance(current, int):  # also bool
        return type(current)(saved)
    if isinstance(current, float):
        return float(saved)
    return saved
