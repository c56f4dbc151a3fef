"""The contract JSON Schemas (``contracts/*.schema.json``) and validators built from them.

The wheel ships the files as package data in ``ttlp/contracts/schemas/``; a source checkout
(or an editable install) reads them from the repository's top-level ``contracts/``. The
msgspec Structs in ``ttlp.contracts.events`` validate on the hot path; these validate input at
the edges (fixture files, ``POST /rules/test``, imported data), where jsonschema's detailed
error messages are worth its lower speed.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final

from jsonschema import Draft202012Validator

SCHEMA_NAMES: Final = ("raw.v1", "unified-event.v1", "dlq.v1")
_SUFFIX: Final = ".schema.json"


def _schema_file(name: str) -> Traversable:
    filename = name if name.endswith(_SUFFIX) else f"{name}{_SUFFIX}"
    if filename.removesuffix(_SUFFIX) not in SCHEMA_NAMES:
        raise ValueError(f"unknown contract schema {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    packaged = resources.files("ttlp.contracts").joinpath("schemas", filename)
    if packaged.is_file():
        return packaged
    # src/ttlp/contracts/schemas.py → the repository root is three levels above this package.
    return Path(__file__).resolve().parents[3] / "contracts" / filename


@functools.cache
def _schema_text(name: str) -> str:
    return _schema_file(name).read_text(encoding="utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """A fresh copy of the contract schema ``name`` (``raw.v1``, ``unified-event.v1``, ``dlq.v1``;
    the ``.schema.json`` suffix is optional)."""
    schema: dict[str, Any] = json.loads(_schema_text(name))
    return schema


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """A reusable Draft 2020-12 validator for the contract schema ``name``."""
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)
