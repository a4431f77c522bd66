"""One config schema (nested dataclasses) shared by the CLI and the Python API.

Precedence, written once here: dataclass defaults < YAML file < ``key=value`` overrides
(dotted keys, e.g. ``eot.rotation.degrees=[-10,10]``). Values are parsed with
``yaml.safe_load`` (never ``eval``). Unknown keys fail with the nearest valid key suggested,
and wrong types name the key and the file.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from patchkit.errors import PatchkitError, suggest

T = TypeVar("T")


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """Convert a YAML value to the annotated type ``tp``; raise a one-line error if it can't."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key, source)
            except PatchkitError as exc:
                errors.append(str(exc))
        raise PatchkitError(f"{source}: key '{key}': {value!r} does not fit {_type_name(tp)}")
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise PatchkitError(f"{source}: key '{key}' must be a mapping, got {value!r}")
        return from_dict(tp, value, source=source, prefix=f"{key}.")
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            if origin is list or tp is list:
                value = [value]
            else:
                raise PatchkitError(f"{source}: key '{key}' must be a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise PatchkitError(
                    f"{source}: key '{key}' must have {len(args)} values, got {len(value)}"
                )
            return tuple(_convert(v, a, key, source) for v, a in zip(value, args))
        item = args[0] if args else Any
        out = [_convert(v, item, key, source) for v in value]
        return tuple(out) if (origin is tuple or tp is tuple) else out
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise PatchkitError(f"{source}: key '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise PatchkitError(f"{source}: key '{key}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise PatchkitError(f"{source}: key '{key}' must be an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise PatchkitError(f"{source}: key '{key}' must be a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise PatchkitError(f"{source}: key '{key}' must be a string, got {value!r}")
    if typing.get_origin(tp) is typing.Literal:
        if value in args:
            return value
        raise PatchkitError(
            f"{source}: key '{key}' must be one of {', '.join(map(str, args))}, got {value!r}"
        )
    return value


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type[T], data: dict, source: str = "config", prefix: str = "") -> T:
    """Build dataclass ``cls`` from a nested dict, checking keys and types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PatchkitError(f"{source}: '{prefix.rstrip('.') or 'config'}' must be a mapping")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise PatchkitError(
                f"{source}: unknown key '{prefix}{key}'"
                + suggest(str(key), names).replace("'", f"'{prefix}", 1)
            )
        kwargs[key] = _convert(value, hints[key], f"{prefix}{key}", source)
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as exc:
            raise PatchkitError(f"{source}: {exc}") from exc
    return obj


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain nested dict/list (tuples become lists), ready for YAML or JSON."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def parse_overrides(items: list[str]) -> dict:
    """``["a.b=1", "c=[1,2]"]`` -> nested dict; values parsed with ``yaml.safe_load``."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise PatchkitError(f"override '{item}' must look like key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise PatchkitError(f"override '{item}' has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise PatchkitError(f"override '{item}': cannot parse value ({exc.problem})") from exc
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise PatchkitError(f"override '{item}' conflicts with another override")
        node[parts[-1]] = value
    return out


def merge(base: dict, update: dict) -> dict:
    """Recursive dict merge; values of ``update`` win."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping; missing file or bad YAML is a one-line error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise PatchkitError("config file not found", path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise PatchkitError(f"invalid YAML{where}: {getattr(exc, 'problem', exc)}", path) from exc
    except UnicodeDecodeError as exc:
        raise PatchkitError("not a text file", path) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PatchkitError("a config file must be a YAML mapping", path)
    return data


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: list[str] | dict | None = None
) -> T:
    """Defaults < YAML file < overrides. Errors name the file or key."""
    data = read_yaml(path) if path is not None else {}
    source = str(path) if path is not None else "config"
    if overrides:
        data = merge(data, overrides if isinstance(overrides, dict) else parse_overrides(overrides))
        source = f"{source} (with overrides)" if path is not None else "overrides"
    return from_dict(cls, data, source=source)


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=False)
