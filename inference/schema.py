"""Typed settings from plain mappings (YAML, ``config.json``), with every problem reported in one pass.

A settings class is a dataclass whose ``__post_init__`` only normalises; its ``check()`` returns the
cross-field problems as ``(key, value, allowed)``. :func:`parse` builds the whole tree, converts numeric
strings such as ``"1e-5"`` (which PyYAML reads as strings), and collects, for the whole file at once:
unknown keys, missing keys, wrong types and every ``check()`` problem, each naming the key path, the
value found and what is allowed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal

__all__ = ["ConfigError", "check_all", "parse", "problem"]


class ConfigError(ValueError):
    """Settings that are missing, unknown, of the wrong type, out of range or inconsistent.

    Attributes:
        problems: one line per problem, each naming the key path, the value and what is allowed.
        source: the file the settings came from, when there is one.
    """

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        if len(self.problems) == 1:
            message = head + self.problems[0]
        else:
            message = f"{head}{len(self.problems)} problems:\n  " + "\n  ".join(self.problems)
        super().__init__(message)


def problem(key: str, value: Any, allowed: str) -> str:
    """One problem line: ``key: got <value>; expected <allowed>``."""
    return f"{key or 'config'}: got {value!r}; expected {allowed}"


class _Invalid(Exception):
    """A value could not be converted; its problems are already recorded."""


def _join(where: str, key: str) -> str:
    if not where:
        return key
    return f"{where}{key}" if key.startswith("[") else f"{where}.{key}"


def _expect(ok: bool, problems: list[str], where: str, value: Any, allowed: str) -> None:
    """Record the problem and stop converting this value unless ``ok``."""
    if not ok:
        problems.append(problem(where, value, allowed))
        raise _Invalid


# the plain types: (check, what is allowed); floats also read a numeric string (PyYAML reads 1e-5 as one)
_SCALARS: dict[Any, tuple[Any, str]] = {
    bool: (lambda v: isinstance(v, bool), "true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    str: (lambda v: isinstance(v, str), "a string"),
}


def _coerce(value: Any, hint: Any, where: str, problems: list[str]) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, args, where, problems)
    if origin is Literal:
        _expect(value in args, problems, where, value, f"one of {list(args)}")
        return value
    if origin is list:
        _expect(isinstance(value, list), problems, where, value, "a list")
        out, failed = [], False
        for i, item in enumerate(value):
            try:
                out.append(_coerce(item, args[0], f"{where}[{i}]", problems))
            except _Invalid:
                failed = True
        if failed:
            raise _Invalid
        return out
    if origin is dict:
        ok = isinstance(value, dict) and all(isinstance(k, str) for k in value)
        _expect(ok, problems, where, value, "a mapping with string keys")
        if args and args[1] is not Any:
            return {k: _coerce(v, args[1], _join(where, k), problems) for k, v in value.items()}
        return dict(value)
    if dataclasses.is_dataclass(hint):
        built = _build(hint, value, where, problems)
        if built is None:
            raise _Invalid
        return built
    if hint in _SCALARS:
        if hint is float and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value)
        check, allowed = _SCALARS[hint]
        _expect(check(value), problems, where, value, allowed)
        return float(value) if hint is float else value
    return value


def _coerce_union(value: Any, args: tuple[Any, ...], where: str, problems: list[str]) -> Any:
    """The first option of a union the value converts to; else the first option's problems."""
    if value is None and type(None) in args:
        return None
    first: list[str] | None = None
    options = [a for a in args if a is not type(None)]
    for option in options:
        attempt: list[str] = []
        try:
            return _coerce(value, option, where, attempt)
        except _Invalid:
            first = first if first is not None else attempt
    problems.extend(first or [problem(where, value, " or ".join(map(str, options)))])
    raise _Invalid


def _build(cls: type, mapping: Any, where: str, problems: list[str]) -> Any:
    if not isinstance(mapping, dict):
        problems.append(problem(where, mapping, "a mapping of keys to values"))
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in sorted(set(mapping) - set(fields), key=str):
        problems.append(_unknown_key(cls, hints, where, str(key), sorted(fields)))
    failed = False
    kwargs = {}
    for name, f in fields.items():
        key = _join(where, name)
        if name not in mapping:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append(f"{key}: missing; this key is required")
                failed = True
            continue
        try:
            kwargs[name] = _coerce(mapping[name], hints[name], key, problems)
        except _Invalid:
            failed = True
    if failed:
        return None
    obj = cls(**kwargs)
    problems.extend(_own_problems(obj, where))
    return obj


def _unknown_key(cls: type, hints: dict[str, Any], where: str, key: str, allowed: list[str]) -> str:
    for name, hint in hints.items():  # a key that belongs one level down (e.g. model.stride)
        if dataclasses.is_dataclass(hint) and key in {f.name for f in dataclasses.fields(hint)}:
            return f"{_join(where, key)}: unknown key here; write it under {_join(where, name)}.{key}"
    return f"{_join(where, key)}: unknown key; allowed keys here are {allowed}"


def _own_problems(obj: Any, where: str) -> list[str]:
    check = getattr(obj, "check", None)
    return [problem(_join(where, key), value, allowed) for key, value, allowed in (check() if check else [])]


def parse(cls: type, data: Any, source: str | None = None, where: str = "") -> Any:
    """Build ``cls`` from a plain mapping, or raise :class:`ConfigError` listing every problem.

    Args:
        cls: a settings dataclass.
        data: the mapping (as read from YAML or JSON).
        source: the file it came from, named in the error.
        where: the key path of ``data`` inside its file (``""`` for the root).
    """
    problems: list[str] = []
    obj = _build(cls, data, where, problems)
    if problems or obj is None:
        raise ConfigError(problems or [problem(where, data, cls.__name__)], source)
    return obj


def check_all(obj: Any, where: str = "") -> list[str]:
    """Every ``check()`` problem of a settings tree built in code (not through :func:`parse`)."""
    found = _own_problems(obj, where)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        items = enumerate(value) if isinstance(value, list) else [(None, value)]
        for i, item in items:
            if dataclasses.is_dataclass(item) and not isinstance(item, type):
                found += check_all(item, _join(where, f.name if i is None else f"{f.name}[{i}]"))
    return found
