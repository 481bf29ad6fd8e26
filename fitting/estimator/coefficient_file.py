"""Reading side of the coefficient-file contract: locate, parse and check a file.

A coefficient file (``fitted_params/<framework>/vNNNN.json`` or ``latest.json``) follows
``fitting/schemas/coefficients-v2.schema.json``. :func:`validate_document` checks the schema
version and then the schema with the small :mod:`fitting.estimator.schema_lite` validator,
which keeps the estimator's cold start low (a test checks it agrees with jsonschema). The
writing side (build, full jsonschema validation, versioned atomic writes) is
:mod:`fitting.estimator.coefficients`.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

from fitting.estimator import schema_lite

__all__ = ["CoefficientFileError", "SUPPORTED_SCHEMA_VERSIONS", "read_document", "resolve_coefficient_path",
           "validate_document", "number_or"]

SUPPORTED_SCHEMA_VERSIONS = (2,)
_SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "coefficients-v2.schema.json"


class CoefficientFileError(ValueError):
    """A coefficient file is missing, unreadable or invalid: ``<path>: <field>: <reason>``."""

    def __init__(self, path, field_, reason):
        self.path, self.field, self.reason = str(path), field_, reason
        super().__init__(f"{path}: {field_}: {reason}")


@lru_cache(maxsize=1)
def _schema():
    with open(_SCHEMA_PATH, encoding="utf-8") as fh:
        return json.load(fh)


def resolve_coefficient_path(path_or_dir) -> Path:
    p = Path(path_or_dir)
    if p.is_dir():
        latest = p / "latest.json"
        if latest.is_file():
            return latest
        versions = sorted(p.glob("v[0-9]*.json"))
        if versions:
            return versions[-1]
        raise CoefficientFileError(p, "<dir>", "no latest.json or vNNNN.json in this folder")
    if not p.is_file():
        raise CoefficientFileError(p, "<file>", "no such coefficient file or folder")
    return p


def validate_document(doc, path="<coefficients>"):
    """Check a coefficient document: schema version first, then the v1 schema.

    Raises
    ------
    CoefficientFileError
        Unknown schema version, or the first schema violation (field path and reason).
    """
    if not isinstance(doc, dict):
        raise CoefficientFileError(path, "<root>", "a coefficient file must hold a JSON object")
    version = doc.get("schema_version")
    if version == 1:
        raise CoefficientFileError(
            path, "schema_version",
            "schema version 1 is no longer read: its intervals put the error on the whole response (exact "
            "weights included) and ignored the between-model error; refit with `python -m fitting.refit profiles/` "
            "to write version 2")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise CoefficientFileError(
            path, "schema_version",
            f"unsupported schema version {version!r}; this package reads version(s) "
            f"{', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))} (refit with this version, or upgrade)")
    if _SCHEMA_PATH.is_file():
        err = schema_lite.first_error(doc, _schema())
        if err is not None:
            raise CoefficientFileError(path, schema_lite.format_path(err[0]), err[1])
    for key in ("framework", "specs", "selected_spec"):
        if key not in doc:
            raise CoefficientFileError(path, key, "required field is missing")
    if doc["selected_spec"] not in doc["specs"]:
        raise CoefficientFileError(path, "selected_spec",
                                   f"{doc['selected_spec']!r} is not one of specs {sorted(doc['specs'])}")


def number_or(v, default=math.nan):
    return default if v is None else float(v)


def read_document(path_or_dir) -> tuple[dict, Path]:
    """Parse a coefficient file (or a folder's ``latest.json``): ``(document, path)``.

    Raises
    ------
    CoefficientFileError
        Missing file, unreadable file or invalid JSON (the document is not validated here).
    """
    path = resolve_coefficient_path(path_or_dir)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh), path
    except json.JSONDecodeError as exc:
        raise CoefficientFileError(path, f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
    except OSError as exc:
        raise CoefficientFileError(path, "<file>", exc.strerror or str(exc)) from None
