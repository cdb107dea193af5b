"""Typed params sections: a dataclass per section, built from a dict that must hold exactly its keys, and
each value checked against the section's JSON schema (src/itr/schemas/params.schema.json).

itr.config declares this workflow's sections on this base; the machinery lives here so that the declarations
stay one screen each.

Example:
    >>> check_section("be", {"margin": -1})
    Traceback (most recent call last):
    ConfigError: the be config is invalid: ...
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any, ClassVar

from itr.errors import InputError

SCHEMA_PATH = Path(__file__).parent / "schemas" / "params.schema.json"


class ConfigError(InputError, ValueError):
    """A params file or config section is invalid; the message names the key and the fix."""


def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def number_items(value, where: str = ""):
    """(dotted key, value) of every number in a nested params mapping."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from number_items(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list):
        for n, v in enumerate(value):
            yield from number_items(v, f"{where}[{n}]")
    elif isinstance(value, float):
        yield where, value


def params_hash(section: Any) -> str:
    """Stable short hash of a (JSON-serialisable) config section, used for MLflow tags and ids."""
    blob = json.dumps(section, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


class Section:
    """Mixin: build a dataclass from a dict, refusing unknown and missing keys."""

    SECTION: ClassVar[str]  # the params.yaml section the dataclass holds

    @classmethod
    def from_dict(cls, d: dict, unread: tuple[str, ...] = ()):
        """``d`` must hold every field except ``unread`` (the keys the calling stage does not read, which keep
        their defaults); ``seed`` included, which the workflow adds to the sections whose code draws random
        numbers."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown keys {unknown}; allowed: {sorted(names)}")
        missing = sorted(names - set(d) - set(unread))
        if missing:
            raise ConfigError(f"{cls.__name__}: params section '{cls.SECTION}' lacks keys {missing}; pass every key "
                              "(a stage may leave out only the keys itr.config.STAGE_UNREAD lists for it)")
        problems = cls.cross_problems(d)
        if problems:
            raise ConfigError(f"the {cls.SECTION} config is invalid: " + "; ".join(problems))
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})

    @classmethod
    def cross_problems(cls, d: dict) -> list[str]:
        """Rules across the section's keys that the schema cannot state (one line per broken rule)."""
        return []

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


def check_section(name: str, d: dict) -> None:
    """Validate one section's values against its schema (the keys present, less the workflow's added seed)."""
    import jsonschema

    section_schema = {**schema()["properties"][name], "required": []}
    values = {k: v for k, v in d.items() if k != "seed"}
    problems = [f"'{name}.{'.'.join(map(str, e.path))}': {e.message}"
                for e in jsonschema.Draft202012Validator(section_schema).iter_errors(values)
                if e.validator != "additionalProperties"]  # unknown and missing keys: from_dict names them
    problems += [f"'{name}.{where}': {value} is not a finite number" for where, value in number_items(values)
                 if not math.isfinite(value)]
    if problems:
        raise ConfigError(f"the {name} config is invalid:\n  - " + "\n  - ".join(problems)
                          + f"\nThe allowed values are in {SCHEMA_PATH}.")
