"""Coefficient files: build, validate, versioned atomic writes, read.

``fitted_params/<framework>/vNNNN.json`` holds one fit, immutable once written;
``latest.json`` is a byte copy of the newest version. The contract is
``fitting/schemas/coefficients-v1.schema.json`` (see docs/design.md "Coefficient file v1").

Versioning: a refit writes a new version only when the framework's input profiles
(``input_sha256``), the fitting code (``code_sha256``), the seed or the fit options differ
from the newest version; otherwise it reports "unchanged, still vNNNN". Writes happen
under an exclusive ``fcntl`` lock on ``<framework>/.lock`` and go through a temporary file
in the same folder moved into place with ``os.replace``, so two refits started at once
never tear a file and never write the same version twice.

Serialisation is deterministic: fixed key order, floats rounded to 12 significant digits
(so that rounding noise of the linear algebra does not change the bytes), NaN and
infinities written as ``null``; two runs on the same inputs and seed give files that differ
only in ``created``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd

from fitting.atomic_io import atomic_write_text
from fitting.overhead.prediction import ERROR_MODEL_KIND
from fitting.overhead.specs import get_spec
from fitting.version import __version__

__all__ = [
    "SCHEMA_VERSION",
    "CoefficientError",
    "WriteResult",
    "build_coefficients",
    "validate_coefficients",
    "write_coefficients",
    "load_coefficients",
    "latest_coefficients",
    "list_versions",
    "dumps",
    "input_sha256",
    "code_sha256",
]

SCHEMA_VERSION = 2
SCHEMA_FILE = "coefficients-v2.schema.json"
_VERSION_RE = re.compile(r"^v(\d{4,})\.json$")
_SIG_DIGITS = 12

#: Modules and data whose source defines a fit (hashed into ``code_sha256``): every module of
#: the physics, the overhead model and the statistics, the data modules that turn a profile into
#: a fitting row (frame columns, GPU table, registry, framework defaults and settings), and the
#: schema of the written file. A change in any of them may change a fit, so it makes a new version.
_CODE_DIRS = ("physics", "overhead", "stats")
_CODE_FILES = (
    "data/frameworks.py", "data/gpus.py", "data/profiles.py", "data/registry.py", "data/registry.yaml",
    "data/transformers_settings.py", "data/vllm_releases.py", "data/vllm_settings.py",
    "estimator/coefficients.py", "units.py", "schemas/coefficients-v2.schema.json", "refit.py",
)


def _code_files(root: Path) -> list[str]:
    """The relative paths hashed into ``code_sha256``, in a fixed order."""
    files = [f"{d}/{p.name}" for d in _CODE_DIRS for p in sorted((root / d).glob("*.py"))]
    return files + list(_CODE_FILES)


class CoefficientError(ValueError):
    """An invalid coefficient file or object; the message names the file and field."""


@dataclass(frozen=True)
class WriteResult:
    """Outcome of :func:`write_coefficients`.

    Attributes
    ----------
    status : {"new", "unchanged"}
    version : int
        The version written, or the newest one when unchanged.
    path : Path
        ``vNNNN.json`` of that version.
    previous : dict or None
        The version before the one written (``new``) or before the newest (``unchanged``).
    message : str
        ``"new version v0003"`` or ``"unchanged, still v0002"``.
    """

    status: str
    version: int
    path: Path
    previous: dict | None
    message: str


# ------------------------------------------------------------------------------ hashing
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def input_sha256(frame, framework: str) -> str:
    """sha256 over the sorted profile ids and contents of one framework's profiles.

    Parameters
    ----------
    frame : pandas.DataFrame
        Profiles DataFrame (``profile_id``, ``framework`` and, where the profile came
        from a file, ``path``).
    framework : str

    Returns
    -------
    str
        Hex digest. Each profile contributes ``id``, NUL, the sha256 of its file's bytes
        (of its canonical JSON row when there is no file), newline.
    """
    rows = frame[frame["framework"] == framework] if len(frame) else frame
    items = []
    for _, row in rows.iterrows():
        path = row.get("path")
        if isinstance(path, str) and os.path.isfile(path):
            with open(path, "rb") as fh:
                content = _sha(fh.read())
        else:
            d = {k: _jsonable(v) for k, v in row.items() if k != "path"}
            content = _sha(json.dumps(d, sort_keys=True, default=str).encode())
        items.append((str(row["profile_id"]), content))
    h = hashlib.sha256()
    for pid, content in sorted(items):
        h.update(f"{pid}\0{content}\n".encode())
    return h.hexdigest()


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, tuple):
        return list(v)
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


@lru_cache(maxsize=1)
def code_sha256() -> str:
    """sha256 of the source of the modules and data that define a fit (:func:`_code_files`)."""
    root = Path(__file__).resolve().parents[1]  # the fitting package
    h = hashlib.sha256()
    for rel in _code_files(root):
        p = root / rel
        if p.is_file():
            h.update(f"{rel}\0{_sha(p.read_bytes())}\n".encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------- build
def _num(v):
    """JSON number: finite floats rounded to 12 significant digits, else None."""
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    v = float(v)
    if not math.isfinite(v):
        return None
    return float(f"{v:.{_SIG_DIGITS}g}") + 0.0  # + 0.0 turns -0.0 into 0.0


def _clean(obj):
    """Recursively: numpy -> python, floats rounded, NaN/inf -> None, tuples -> lists."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer, float, np.floating)):
        return _num(obj)
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def _error_model_dict(fit) -> dict:
    em = fit.error_model
    return {"kind": ERROR_MODEL_KIND, "within_scale": _num(em.within_scale),
            "between_scale": None if em.between_scale is None else _num(em.between_scale),
            "between_rule": em.between_rule,
            "conservative_scale": None if em.conservative_scale is None else _num(em.conservative_scale),
            "df": _num(em.df) if math.isfinite(em.df) and em.df >= 1 else None,
            "n_groups": int(em.n_groups), "note": em.note}


def _spec_dict(fit, spec) -> dict:
    params = []
    for i, ps in enumerate(spec.params):
        params.append({
            "name": ps.name, "unit": ps.unit, "estimate": _num(fit.estimate[i]) if math.isfinite(fit.estimate[i]) else 0.0,
            "se": _num(fit.se[i]), "ci_lower": _num(fit.ci_lower[i]), "ci_upper": _num(fit.ci_upper[i]),
            "lower_bound": _num(ps.lower), "upper_bound": _num(ps.upper),
            "identified": bool(fit.identified[i]), "at_bound": bool(fit.at_bound[i]),
            "not_identified_reason": fit.not_identified_reason.get(ps.name),
            "description": ps.description,
        })
    cv = None
    if fit.cv is not None:
        cv = {k: v for k, v in fit.cv.items() if k != "predictions"}
    return _clean({
        "name": spec.name, "formula": spec.formula, "description": spec.description,
        "response": spec.response, "error_mode": fit.error_mode, "residual_scale_mode": fit.error_mode,
        "status": fit.status, "message": fit.message, "params": params,
        "covariance": np.where(np.isfinite(fit.cov), fit.cov, 0.0),
        "residual_scale": fit.residual_scale, "df_resid": int(fit.df_resid), "nobs": int(fit.nobs),
        "rss": fit.rss, "aic": fit.aic, "bic": fit.bic, "loglike": fit.loglike,
        "converged": bool(fit.converged), "data_ranges": fit.data_ranges,
        "error_model": _error_model_dict(fit),
        "outliers": fit.outliers, "cv": cv, "warnings": sorted(set(fit.warnings)),
    })


def build_coefficients(fw_fit, hypothesis: dict | None, *, input_sha: str, seed: int,
                       package_version: str | None = None, skipped_files=()) -> dict:
    """The coefficient document of one framework (without ``version`` and ``created``,
    which :func:`write_coefficients` adds).

    Parameters
    ----------
    fw_fit : fitting.overhead.fit.FrameworkFit
    hypothesis : dict or None
        :func:`fitting.overhead.log_scaling.log_scaling_test` output.
    input_sha : str
        :func:`input_sha256` of the framework's profiles.
    seed : int
    package_version : str, optional
        Default: ``fitting.__version__``.
    skipped_files : sequence of (path, reason)
        Files the loader skipped (non-strict mode), recorded for the report.

    Returns
    -------
    dict
        JSON-ready, valid against the schema once ``version``/``created`` are added.
    """

    obs = fw_fit.observations
    specs = {name: _spec_dict(f, get_spec(name)) for name, f in fw_fit.specs.items()}
    n_models = len(set(obs.models)) if obs.n_used else 0
    n_arch = len(set(obs.groups)) if obs.n_used else 0
    doc = {
        "schema_version": SCHEMA_VERSION,
        "framework": fw_fit.framework,
        "package_version": package_version or __version__,
        "code_sha256": code_sha256(),
        "input_sha256": input_sha,
        "seed": int(seed),
        "status": fw_fit.status,
        "status_reason": fw_fit.reason or None,
        "observed_quantity": dict(obs.observed_quantity),
        "kv_cache_mode": obs.kv_cache_mode,
        "profiles": {
            "n_total": int(obs.n_total), "n_used": int(obs.n_used), "n_models": int(n_models),
            "n_architectures": int(n_arch),
            "n_batch_defaulted": int(obs.table["batch_defaulted"].sum()) if obs.n_used else 0,
            "excluded": [{"profile_id": e["profile_id"], "reason": e["reason"]} for e in obs.excluded],
            "skipped_files": [{"path": str(p), "reason": str(r)} for p, r in skipped_files],
        },
        "options": dict(fw_fit.options),
        "selected_spec": fw_fit.selected_spec,
        "selection": fw_fit.selection,
        "specs": specs,
        "cuda_graph": (_spec_dict(fw_fit.cuda_graph, get_spec("cuda_graph"))
                       if fw_fit.cuda_graph is not None else None),
        "hypothesis": hypothesis,
        "fallback": fw_fit.fallback,
        "nested_cv": ({k: v for k, v in fw_fit.nested_cv.items() if k != "predictions"}
                      if fw_fit.nested_cv is not None else None),
    }
    return _clean(doc)


# ---------------------------------------------------------------------------- validate
@lru_cache(maxsize=1)
def _validator():
    schema = json.loads(resources.files("fitting").joinpath("schemas", SCHEMA_FILE).read_text("utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_coefficients(doc: dict, path=None) -> dict:
    """Validate a coefficient document against the schema (and cross-field rules).

    Raises
    ------
    CoefficientError
        ``<path>: <field>: <reason>`` for the first problem found.
    """
    where = str(path) if path is not None else "<object>"
    errors = sorted(_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        field = ".".join(str(p) for p in e.absolute_path) or "document"
        raise CoefficientError(f"{where}: {field}: {e.message}")
    if doc["selected_spec"] not in doc["specs"]:
        raise CoefficientError(f"{where}: selected_spec: {doc['selected_spec']!r} is not among specs "
                               f"{sorted(doc['specs'])}")
    for name, spec in doc["specs"].items():
        k = len(spec["params"])
        cov = spec["covariance"]
        if len(cov) != k or any(len(row) != k for row in cov):
            raise CoefficientError(f"{where}: specs.{name}.covariance: must be {k} x {k}")
    return doc


def dumps(doc: dict) -> str:
    """Deterministic JSON text of a coefficient document (2-space indent, final newline)."""
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# -------------------------------------------------------------------------------- files
@contextlib.contextmanager
def _locked(lock_path: Path):
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _atomic_write(target: Path, text: str) -> None:
    atomic_write_text(target, text, fsync=True)


def list_versions(framework_dir) -> list[int]:
    """Version numbers present as ``vNNNN.json`` in ``framework_dir`` (sorted)."""
    d = Path(framework_dir)
    if not d.is_dir():
        return []
    return sorted(int(m.group(1)) for p in d.iterdir() if (m := _VERSION_RE.match(p.name)))


def load_coefficients(path) -> dict:
    """Read and validate one coefficient file.

    Raises
    ------
    CoefficientError
        Unreadable JSON or a schema violation (message names the file).
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CoefficientError(f"{path}: json: {exc}") from None
    return validate_coefficients(doc, path)


def _load_any_version(path: Path) -> dict | None:
    """A published file of this schema version, validated; None for an older schema version
    (which never matches a new fit, so a new version is written after it)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CoefficientError(f"{path}: json: {exc}") from None
    if raw.get("schema_version") != SCHEMA_VERSION:
        return None
    return validate_coefficients(raw, path)


def latest_coefficients(out_dir, framework: str) -> dict | None:
    """The newest version of ``framework`` under ``out_dir`` (None if there is none)."""
    d = Path(out_dir) / framework
    versions = list_versions(d)
    return load_coefficients(d / f"v{versions[-1]:04d}.json") if versions else None


def _fingerprint(doc: dict) -> tuple:
    return (doc.get("input_sha256"), doc.get("code_sha256"), doc.get("seed"),
            json.dumps(doc.get("options"), sort_keys=True))


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_coefficients(doc: dict, out_dir, *, created: str | None = None) -> WriteResult:
    """Write a new version of a framework's coefficients unless nothing changed.

    Parameters
    ----------
    doc : dict
        From :func:`build_coefficients` (``version``/``created`` are added here).
    out_dir : str or Path
        ``fitted_params/``; the file goes to ``<out_dir>/<framework>/vNNNN.json`` and
        ``latest.json``.
    created : str, optional
        UTC time stamp ``YYYY-MM-DDTHH:MM:SSZ`` (default: now).

    Returns
    -------
    WriteResult
    """
    fw_dir = Path(out_dir) / doc["framework"]
    fw_dir.mkdir(parents=True, exist_ok=True)
    with _locked(fw_dir / ".lock"):
        versions = list_versions(fw_dir)
        newest = _load_any_version(fw_dir / f"v{versions[-1]:04d}.json") if versions else None
        if newest is not None and _fingerprint(newest) == _fingerprint(doc):
            before = (_load_any_version(fw_dir / f"v{versions[-2]:04d}.json")
                      if len(versions) > 1 else None)
            path = fw_dir / f"v{versions[-1]:04d}.json"
            latest = fw_dir / "latest.json"
            text = path.read_text(encoding="utf-8")
            if not latest.is_file() or latest.read_text(encoding="utf-8") != text:
                _atomic_write(latest, text)
            return WriteResult("unchanged", versions[-1], path, before,
                               f"unchanged, still v{versions[-1]:04d}")
        version = (versions[-1] + 1) if versions else 1
        full = {"schema_version": doc["schema_version"], "framework": doc["framework"],
                "version": version, "created": created or _utc_now()}
        full.update({k: v for k, v in doc.items() if k not in full})
        validate_coefficients(full, fw_dir / f"v{version:04d}.json")
        text = dumps(full)
        path = fw_dir / f"v{version:04d}.json"
        if path.exists():  # never overwrite an immutable version
            raise CoefficientError(f"{path}: version: v{version:04d} exists already")
        _atomic_write(path, text)
        _atomic_write(fw_dir / "latest.json", text)
        return WriteResult("new", version, path, newest, f"new version v{version:04d}")
