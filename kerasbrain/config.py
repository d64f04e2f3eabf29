"""The one config reader: TOML (stdlib `tomllib`) or JSON into frozen dataclasses, with strict checks.

Every model family describes its config as a frozen dataclass whose fields are sections (frozen
dataclasses), arrays of tables (a tuple of one dataclass, e.g. `[[stages]]`) or top-level
true/false switches. `parse_config` reads any of them the same way: a key left out takes the
dataclass default, an unknown key or a value of the wrong type is an error naming the file,
section and key, so a typo never silently trains the wrong thing. This module imports no Keras.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from pathlib import Path

SHIPPED_CONFIGS = Path(__file__).resolve().parent / "configs"


class ConfigError(ValueError):
    """A config file is unreadable or holds an unknown key or a value of the wrong type."""


class OutOfRange(ValueError):
    """Raised by a config dataclass's `__post_init__` for a value outside its range; names the key."""

    def __init__(self, key: str, rule: str, value):
        super().__init__(f"{key}: {rule}. Received: {value!r}")
        self.key = key


def check(condition: bool, key: str, rule: str, value) -> None:
    """For config dataclasses' `__post_init__`: raise `OutOfRange` unless `condition` holds."""
    if not condition:
        raise OutOfRange(key, rule, value)


def check_at_least(section, minimum, *keys: str) -> None:
    """`check` that each named field of `section` is at least `minimum`."""
    for key in keys:
        value = getattr(section, key)
        check(value >= minimum, key, f"must be at least {minimum}", value)


def build_section(cls, values: dict, where: str):
    """One section's dataclass from a table, checking names and types against its defaults."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a table. Received: {values!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(known)}")
    defaults = cls()
    kwargs = {}
    for name, value in values.items():
        default = getattr(defaults, name)
        if isinstance(default, tuple):
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{where}.{name}: expected a list. Received: {value!r}")
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}.{name}: expected true/false. Received: {value!r}")
        elif isinstance(default, (int, float)):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigError(f"{where}.{name}: expected a number. Received: {value!r}")
            if isinstance(default, int) and float(value) != int(value):
                raise ConfigError(f"{where}.{name}: expected a whole number. Received: {value!r}")
            value = type(default)(value)
        elif isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"{where}.{name}: expected a string. Received: {value!r}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except OutOfRange as exc:
        raise ConfigError(f"{where}.{exc}") from exc


def _table_type(config_cls, name: str):
    """The element dataclass of an array-of-tables field annotated `tuple[Element, ...]`."""
    hint = typing.get_type_hints(config_cls)[name]
    args = typing.get_args(hint)
    return args[0] if args and dataclasses.is_dataclass(args[0]) else None


def parse_config(config_cls, raw: dict, source: str = "config"):
    """A family's config dataclass from a parsed TOML/JSON table (see the module docstring)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a table of sections")
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {unknown}; allowed: {sorted(fields)}")
    defaults = config_cls()
    kwargs = {}
    for name, value in raw.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = build_section(type(default), value, f"{source}: [{name}]")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{source}: {name} must be true or false. Received: {value!r}")
            kwargs[name] = value
        elif isinstance(default, tuple) and _table_type(config_cls, name):
            element = _table_type(config_cls, name)
            if not isinstance(value, (list, tuple)) or not value:
                raise ConfigError(f"{source}: [[{name}]] must be a non-empty list of tables")
            kwargs[name] = tuple(build_section(element, v, f"{source}: [[{name}]] #{i + 1}")
                                 for i, v in enumerate(value))
        else:
            raise ConfigError(f"{source}: {name}: unsupported config field")  # a schema bug, not a user error
    try:
        return config_cls(**kwargs)
    except OutOfRange as exc:  # a rule across sections
        raise ConfigError(f"{source}: {exc}") from exc


def shipped_configs() -> list[str]:
    """Names of the configs that come with kerasbrain (usable as `--config NAME`)."""
    return sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.toml"))


def read_toml(path: str | Path) -> tuple[dict, str]:
    """The table in a TOML file, or in a shipped config named `path`; returns it and its source name."""
    path = Path(path)
    if not path.exists() and str(path) in shipped_configs():
        path = SHIPPED_CONFIGS / f"{path}.toml"
    try:
        return tomllib.loads(path.read_text()), str(path)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found (shipped configs: {', '.join(shipped_configs())})") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a folder, expected a TOML file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc


def load_config_file(config_cls, path: str | Path | None, changes: tuple[str, ...] = ()):
    """Read a TOML config file, or a shipped one by name, into `config_cls` (None = all defaults).

    `changes` are `SECTION.KEY=VALUE` (or top-level `KEY=VALUE`) settings, VALUE in TOML syntax,
    applied on top of the file and checked like it, so an ablation can say "the baseline plus this
    one change".
    """
    raw, source = read_toml(path) if path is not None else ({}, "defaults")
    for change in changes:
        key, equals, value = change.partition("=")
        *sections, name = key.strip().split(".")
        if not (equals and name and all(sections)) or len(sections) > 1:
            raise ConfigError(f"{change!r}: expected [SECTION.]KEY=VALUE")
        try:
            value = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{change!r}: the value is not TOML ({exc})") from exc
        (raw.setdefault(sections[0], {}) if sections else raw)[name] = value
    if not changes and path is None:
        return config_cls()
    return parse_config(config_cls, raw, source + "".join(f" + {c}" for c in changes))


def save_config_json(config, path: str | Path) -> None:
    """Write a config as the run's `config.json` (every value spelled out, defaults included)."""
    Path(path).write_text(json.dumps(dataclasses.asdict(config), indent=2))


def config_from_json_file(config_cls, path: str | Path):
    try:
        raw = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    return parse_config(config_cls, raw, str(path))


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML spelling for {value!r}")


def _changed(section, defaults) -> list[tuple[str, object]]:
    return [(f.name, getattr(section, f.name)) for f in dataclasses.fields(section)
            if getattr(section, f.name) != getattr(defaults, f.name)]


def config_to_toml(config, header: tuple[str, ...] = ()) -> str:
    """A config as a TOML file `load_config_file` reads back to the same config: every value that
    differs from the dataclass defaults (so the file reads like a hand-written one), `header` as
    comments on top."""
    defaults = type(config)()
    lines = [f"# {h}" if h else "#" for h in header]
    tables = []
    for f in dataclasses.fields(config):
        value, default = getattr(config, f.name), getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            changed = _changed(value, default)
            if changed:
                tables.append((f"[{f.name}]", changed))
        elif isinstance(value, tuple) and _table_type(type(config), f.name):
            if value != default:
                element = _table_type(type(config), f.name)()
                tables += [(f"[[{f.name}]]", _changed(v, element)) for v in value]
        elif value != default:
            lines.append(f"{f.name} = {_toml_value(value)}")
    for title, changed in tables:
        lines += ["", title] + [f"{name} = {_toml_value(value)}" for name, value in changed]
    return "\n".join(lines) + "\n"
