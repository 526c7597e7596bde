"""One typed reader for mappings people write: config files, inventories, policies, and the
text of flags and environment variables.

    reader = load_mapping(text, "/etc/tuxai/config.yaml", ConfigError, hint="see docs/jobs.md")
    reader.child("daemon").integer("job_pids_max", 16384)
    # ConfigError: /etc/tuxai/config.yaml: daemon.job_pids_max must be an integer ≥ 0, got 'many'

Every failure is one line that names the file (``origin``) and the field (``path.key``), raised
as the caller's error class (``ConfigError``, ``InventoryError`` …) with the caller's hint.

A frozen dataclass declares its fields for ``read_dataclass`` with ``rules(...)`` metadata:

    @dataclass(frozen=True)
    class Policy:
        grace_s: float = field(default=60.0, metadata=rules("SIGTERM → SIGKILL", duration=True))  # key "grace"
        retries: int = field(default=0, metadata=rules("restarts of a failed job", maximum=100))

A duration's key drops the ``_s`` of its field: its value carries its unit (``90s``, ``30m``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tuxai.errors import TuxaiError
from tuxai.model.units import parse_bytes, parse_duration

T = TypeVar("T")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class Rules:
    """What one declared field accepts, and how people are told about it."""

    help: str = ""
    minimum: float | None = None  # inclusive
    above: float | None = None  # exclusive: "a number above 0"
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    duration: bool = False  # seconds, written 90, 90s, 30m, 4h, 2d or 1:30:00
    must_exist: bool = False  # a path that must name an existing file
    metavar: str = ""
    aliases: tuple[tuple[str, str], ...] = ()  # (flag, value): a flag that sets this field to value
    bare_s: float = 1.0  # a duration's bare number counts this many seconds: 60 for a time limit, as Slurm


def rules(
    help: str,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] = (),
    duration: bool = False,
    must_exist: bool = False,
    metavar: str = "",
    aliases: tuple[tuple[str, str], ...] = (),
    bare_s: float = 1.0,
) -> dict[str, Rules]:
    """A dataclass field's metadata: its help and what ``read_dataclass`` accepts for it.

    ``field(default=5.0, metadata=rules("between ticks", duration=True, above=0))``; a time limit
    reads a bare number as minutes, as Slurm does: ``rules(…, duration=True, bare_s=60)``.
    """
    return {"rules": Rules(help, minimum, above, maximum, choices, duration, must_exist, metavar, aliases, bare_s)}


@dataclass(frozen=True)
class Declared:
    """One field of a declared dataclass: its name, the key people write, its kind and rules."""

    name: str
    kind: str  # flag, integer, number, duration, text, path or choice
    optional: bool
    default: Any
    rules: Rules

    @property
    def key(self) -> str:
        """What people write: ``tick_period`` for the duration ``tick_period_s``, else the name."""
        return self.name.removesuffix("_s") if self.kind == "duration" else self.name

    @property
    def flag(self) -> str:
        """``--tick-period``."""
        return "--" + self.key.replace("_", "-")

    def env(self, prefix: str) -> str:
        """``TUXAI_TICK_PERIOD`` for the prefix ``TUXAI_``."""
        return prefix + self.key.upper()

    @property
    def metavar(self) -> str:
        """What its flag takes: ``DURATION``, ``N``, ``limits|all|off`` or the declared one."""
        kinds = {"duration": "DURATION", "integer": "N", "number": "NUMBER", "path": "FILE", "text": "TEXT"}
        return self.rules.metavar or ("|".join(self.rules.choices) if self.rules.choices else kinds.get(self.kind, ""))

    def help(self) -> str:
        """The help line of its flag, with what it takes and its default: ``… (a duration; default 5s)``."""
        duration = "a duration" + ("; a bare number is minutes" if self.rules.bare_s == 60 else "")
        takes = {"duration": duration, "choice": " | ".join(self.rules.choices)}.get(self.kind, "")
        shown = "" if self.default in (None, "", False) else f"default {_shown(self.default, self.kind)}"
        extra = "; ".join(part for part in (takes, shown) if part)
        return f"{self.rules.help} ({extra})" if extra else self.rules.help


def declared_fields(cls: type[Any]) -> tuple[Declared, ...]:
    """The fields of a frozen dataclass as ``read_dataclass`` reads them (kinds from the types)."""
    hints = typing.get_type_hints(cls)
    found = []
    for item in dataclasses.fields(cls):
        hint = hints[item.name]
        args = typing.get_args(hint)
        optional = isinstance(hint, types.UnionType) and type(None) in args
        base = next(a for a in args if a is not type(None)) if optional else hint
        rules: Rules = item.metadata.get("rules", Rules())
        kinds = {bool: "flag", int: "integer", float: "number", str: "text", Path: "path"}
        kind = kinds.get(base, "text")
        if rules.duration:
            kind = "duration"
        elif rules.choices:
            kind = "choice"
        default = item.default if item.default is not dataclasses.MISSING else None
        found.append(Declared(item.name, kind, optional, default, rules))
    return tuple(found)


class MappingReader:
    """Typed reads of one mapping; each failure is one line naming the file and the field.

    ``text=True`` for values that arrive as text (a flag, an environment variable): ``"12"``
    is then an integer and ``"false"`` a flag, as YAML would have read them.
    """

    def __init__(
        self,
        data: object,
        origin: str,
        *,
        path: str = "",
        error: type[TuxaiError],
        hint: str = "",
        text: bool = False,
    ) -> None:
        self.origin, self.path, self.error, self.hint, self.text_values = origin, path, error, hint, text
        if not isinstance(data, dict):
            raise self.error(f"{self._prefix()}{path or 'the file'} must be a mapping, got {data!r}", hint=hint)
        self.data: dict[Any, Any] = data

    def _prefix(self) -> str:
        return f"{self.origin}: " if self.origin else ""

    def where(self, key: str) -> str:
        """``gpus[0].count``: the field's place in the file."""
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, expected: str) -> TuxaiError:
        """The error for a bad value: ``file: where must be expected, got value``."""
        return self.error(
            f"{self._prefix()}{self.where(key)} must be {expected}, got {self.data.get(key)!r}", hint=self.hint
        )

    def problem(self, message: str) -> TuxaiError:
        """An error about the mapping as a whole, named by its file and place."""
        place = f"{self.path}: " if self.path else ""
        return self.error(f"{self._prefix()}{place}{message}", hint=self.hint)

    def reject_unknown(self, known: Iterable[str], noun: str = "setting") -> None:
        """Raise for keys that are not ``known``: ``unknown setting 'colour'`` (the known ones in the hint)."""
        names = sorted(set(known))
        unknown = sorted(str(k) for k in self.data if k not in names)
        if unknown:
            listed = ", ".join(repr(k) for k in unknown)
            place = f"{self.path}: " if self.path else ""
            raise self.error(
                f"{self._prefix()}{place}unknown {noun}{'s' if len(unknown) > 1 else ''} {listed}",
                hint=f"known: {', '.join(names)}",
            )

    def text(self, key: str, default: str | None = None) -> str | None:
        """Text (a number is taken as its text)."""
        value = self.data.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(key, "text")
        return str(value)

    def integer(self, key: str, default: int | None = None, minimum: int = 0, maximum: int | None = None) -> int | None:
        """A whole number within bounds."""
        value = self.data.get(key, default)
        if value is None:
            return None
        if self.text_values and isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        bad = not isinstance(value, int) or isinstance(value, bool)
        if bad or value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"≥ {minimum}"
            raise self.fail(key, f"an integer {bound}")
        return int(value)

    def number(
        self,
        key: str,
        default: float | None = None,
        minimum: float | None = None,
        above: float | None = None,
        maximum: float | None = None,
    ) -> float | None:
        """A finite number within bounds."""
        value = self.data.get(key, default)
        if value is None:
            return None
        if self.text_values and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value)
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise self.fail(key, "a number" + _bounds(minimum, above, maximum))
        low = (minimum is not None and value < minimum) or (above is not None and value <= above)
        if low or (maximum is not None and value > maximum):
            raise self.fail(key, "a number" + _bounds(minimum, above, maximum))
        return float(value)

    def duration(
        self,
        key: str,
        default: float | None = None,
        minimum: float = 0.0,
        above: float | None = None,
        bare_s: float = 1.0,
    ) -> float | None:
        """Seconds: ``90``, ``90s``, ``30m``, ``4h``, ``2d`` or ``1:30:00``; a bare number counts ``bare_s``."""
        value = self.data.get(key, default)
        if value is None:
            return None
        forms = ("90 (minutes), " if bare_s == 60 else "") + "90s, 30m, 4h, 2d"
        expected = "a duration" + _bounds(minimum if minimum > 0 else None, above, None) + f" ({forms})"
        try:
            seconds = parse_duration(value, bare_s)
        except (ValueError, TypeError, AttributeError):
            raise self.fail(key, expected) from None
        if seconds < minimum or (above is not None and seconds <= above):
            raise self.fail(key, expected)
        return seconds

    def size(self, key: str) -> int | None:
        """Bytes: ``80GiB``, ``512MB`` or a plain count."""
        value = self.data.get(key)
        if value is None:
            return None
        try:
            return parse_bytes(value)
        except (ValueError, TypeError):
            raise self.fail(key, "a size such as 80GiB") from None

    def flag(self, key: str, default: bool | None = None) -> bool | None:
        """``true`` or ``false``."""
        value = self.data.get(key, default)
        if self.text_values and isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        if value is not None and not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str | None:
        """One of ``choices``."""
        value = self.data.get(key, default)
        if value is not None and (not isinstance(value, str) or value not in choices):
            raise self.fail(key, f"one of {', '.join(choices)}")
        return value

    def file(self, key: str, must_exist: bool = False) -> Path | None:
        """A path (``~`` expanded); ``must_exist``: an existing file."""
        text = self.text(key)
        if text is None or text == "":
            return None
        path = Path(text).expanduser()
        if must_exist and not path.is_file():
            raise self.error(
                f"{self._prefix()}{self.where(key)}: {path} does not exist", hint=self.hint or "check the path"
            )
        return path

    def child(self, key: str) -> MappingReader:
        """The mapping under ``key`` (empty when absent)."""
        value = self.data.get(key)
        return MappingReader(
            {} if value is None else value, self.origin, path=self.where(key), error=self.error, hint=self.hint,
            text=self.text_values,
        )  # fmt: skip

    def read(self, field: Declared, key: str | None = None) -> Any:
        """The value of a declared field under ``key`` (default: the field's key), by its kind and rules."""
        key = field.key if key is None else key
        rules = field.rules
        if field.kind == "flag":
            return self.flag(key)
        if field.kind == "integer":
            maximum = int(rules.maximum) if rules.maximum is not None else None
            return self.integer(key, minimum=int(rules.minimum or 0), maximum=maximum)
        if field.kind == "number":
            return self.number(key, minimum=rules.minimum, above=rules.above, maximum=rules.maximum)
        if field.kind == "duration":
            return self.duration(key, minimum=rules.minimum or 0.0, above=rules.above, bare_s=rules.bare_s)
        if field.kind == "choice":
            return self.choice(key, rules.choices)
        if field.kind == "path":
            return self.file(key, must_exist=rules.must_exist)
        return self.text(key)


def _shown(value: Any, kind: str) -> str:
    """A default as people write it: 31536000.0 seconds → ``365d``, 5.0 → ``5s``."""
    if kind == "duration" and isinstance(value, int | float):
        for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
            if value >= seconds and value % seconds == 0:
                return f"{value / seconds:g}{unit}"
        return f"{value:g}s"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _bounds(minimum: float | None, above: float | None, maximum: float | None) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"≥ {minimum:g}")
    if above is not None:
        parts.append(f"above {above:g}")
    if maximum is not None:
        parts.append(f"at most {maximum:g}")
    return (" " + " and ".join(parts)) if parts else ""


def load_mapping(text: str, origin: str, error: type[TuxaiError], hint: str = "") -> MappingReader:
    """YAML text → a reader of its top mapping (an empty file is an empty mapping).

    Raises:
        error: the text is not YAML (with the line), or not a mapping.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot parse"
        raise error(f"{origin}: not valid YAML{where}: {problem}", hint=hint or "fix the file") from None
    return MappingReader({} if data is None else data, origin, error=error, hint=hint)


def read_dataclass(cls: type[T], reader: MappingReader, base: T | None = None, minimum: float | None = None) -> T:
    """The declared dataclass ``cls`` from a mapping of its keys, over ``base`` (default: its defaults);
    ``minimum``: the lower bound of every number field that declares none.

    Raises:
        reader.error: an unknown key, or a value of the wrong kind (named with its file and place).
    """
    declared = declared_fields(cls)
    if minimum is not None:
        declared = tuple(
            dataclasses.replace(f, rules=dataclasses.replace(f.rules, minimum=minimum))
            if f.kind in ("integer", "number", "duration") and f.rules.minimum is None and f.rules.above is None
            else f
            for f in declared
        )
    reader.reject_unknown(field.key for field in declared)
    values = {f.name: reader.read(f) for f in declared if f.key in reader.data}
    start = cls() if base is None else base
    return dataclasses.replace(start, **values)  # type: ignore[type-var]


def read_text_value(field: Declared, raw: object, source: str, error: type[TuxaiError], hint: str = "") -> Any:
    """One value from a flag or a variable, read by its field's rules: ``--tick-period must be …, got 'x'``."""
    return MappingReader({source: raw}, "", error=error, hint=hint, text=True).read(field, key=source)
