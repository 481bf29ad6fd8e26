"""Profile records (schema v1): validate, load a directory, flatten to a DataFrame, write.

A profile is one JSON file per measured run (``profiles/<...>/<profile_id>.json``) that
follows ``fitting/schemas/profile-v1.schema.json``; ``docs/profiles.md`` documents every
field. Measured memory keeps each figure exactly as printed, with its unit in the field
name (``weights_gib``, ``peak_total_mb``); :meth:`ProfileSet.to_frame` converts every
quantity exactly to GiB (``2**30`` bytes) and leaves missing measurements as NaN.

Every problem with a file is reported as one :class:`ProfileError` that prints
``<path>: <field>: <reason>``.

Examples
--------
>>> from fitting.data.profiles import load_profiles
>>> profiles = load_profiles("profiles/", strict=False)   # doctest: +SKIP
>>> frame = profiles.to_frame()                           # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from fitting.atomic_io import atomic_write_text
from fitting.units import BYTES_PER_GIB, UNIT_BYTES

__all__ = [
    "COUNT_FIELDS",
    "FRAMEWORKS",
    "FRAME_COLUMNS",
    "MEMORY_QUANTITIES",
    "ProfileError",
    "ProfileRecord",
    "ProfileSet",
    "load_profile",
    "load_profiles",
    "profile_converter",
    "split_measured_name",
    "validate_profile",
    "write_converter_output",
    "write_profile",
]

SCHEMA_FILE = "profile-v1.schema.json"

#: Framework families (the schema's ``framework`` enum).
FRAMEWORKS = ("vllm", "sglang", "trtllm", "tgi", "llamacpp", "transformers", "pytorch")

#: Memory quantities a profile may measure (``measured.<quantity>_<unit>``), in the
#: order used for files and DataFrame columns. Must match the schema's pattern.
MEMORY_QUANTITIES = (
    "weights",
    "kv_cache",
    "activation_peak",
    "non_torch",
    "cuda_graph",
    "compute_buffer",
    "peak_total",
    "peak_allocated",
    "peak_reserved",
    "peak_torch",
    "non_kv_total",
    "weights_non_torch",
    "other",
    "weights_cpu",
    "cuda_context",
    "torch_allocated",
    "free_after_boot",
    "free_before_load",
    "peak_unspecified",
)

#: Non-memory counts in ``measured``.
COUNT_FIELDS = ("kv_cache_tokens", "num_gpu_blocks")

#: Unit suffixes, longest first so that ``_gib`` is not read as ``_b``.
_UNITS = tuple(sorted(UNIT_BYTES, key=len, reverse=True))

#: Flat DataFrame columns, in order (design.md "Profiles"); the ``<quantity>_gib``
#: columns follow, one per entry of :data:`MEMORY_QUANTITIES`, then the counts.
FRAME_COLUMNS = (
    "profile_id", "path", "framework", "framework_version", "framework_variant", "engine",
    "model_id", "gpu_name", "gpu_memory_gib", "gpu_count", "tp", "pp", "batch_size",
    "input_len", "output_len", "context_len", "max_model_len", "max_num_seqs",
    "max_num_batched_tokens", "dtype", "quantization", "kv_cache_dtype",
    "gpu_memory_utilization", "enforce_eager", "kv_cache_mode", "measured_scope",
    "use_in_fit", "exclude_reason", "flags", "provenance_kind", "source", "series",
    "attention_impl", "phase", "measurement_notes", "provenance_notes", "provenance_evidence",
    "provenance_date", "n_ubatch", "flash_attn", "mem_fraction_static", "max_total_tokens", "language_model_only",
    "cuda_graph_estimate_gib", "n_gpu_layers", "n_layers_total", "measured_units", "cuda_memory_fraction",
    "model_runner", "compile_cache",
)

_INT_COLUMNS = ("gpu_count", "tp", "pp", "batch_size", "input_len", "output_len", "context_len",
                "max_model_len", "max_num_seqs", "max_num_batched_tokens") + COUNT_FIELDS


class ProfileError(ValueError):
    """A profile file (or object) is invalid.

    Attributes
    ----------
    path : str
        File the problem is in (``"<object>"`` for an in-memory record without a path).
    field : str
        Dotted field name (``measured.weights_gib``), ``"json"`` for unreadable JSON,
        ``"profile"`` for the record as a whole.
    reason : str
        What is wrong, in words.
    """

    def __init__(self, path, field: str, reason: str):
        self.path = str(path) if path is not None else "<object>"
        self.field = field
        self.reason = reason
        super().__init__(f"{self.path}: {self.field}: {self.reason}")


@dataclass(frozen=True)
class ProfileRecord:
    """One validated profile: its JSON content and the file it came from.

    Mapping-style access reads the JSON content (``record["framework"]``).
    """

    path: Path | None
    data: dict

    @property
    def profile_id(self) -> str:
        return self.data["profile_id"]

    @property
    def framework(self) -> str:
        return self.data["framework"]

    def __getitem__(self, key):
        return self.data[key]

    def get(self, key, default=None):
        return self.data.get(key, default)

    def measured_gib(self) -> dict:
        """Every measured memory quantity converted exactly to GiB.

        Returns
        -------
        dict
            ``{"<quantity>_gib": value}`` for each quantity present with a non-null
            value (GiB, ``2**30`` bytes); absent quantities are left out.
        """
        out = {}
        for name, value in self.data.get("measured", {}).items():
            if value is None or name in COUNT_FIELDS:
                continue
            quantity, unit = split_measured_name(name)
            out[f"{quantity}_gib"] = value * UNIT_BYTES[unit] / BYTES_PER_GIB
        return out


@dataclass
class ProfileSet:
    """Profiles loaded from a directory.

    Attributes
    ----------
    records : list of ProfileRecord
        Valid profiles, in sorted path order.
    skipped : list of (Path, str)
        Files left out by ``strict=False`` and why (the full ``<path>: <field>: <reason>``).
    """

    records: list = field(default_factory=list)
    skipped: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[ProfileRecord]:
        return iter(self.records)

    def to_frame(self):
        """One row per profile with flat columns (pandas imported here, lazily).

        Returns
        -------
        pandas.DataFrame
            Columns :data:`FRAME_COLUMNS`, then ``<quantity>_gib`` for every quantity of
            :data:`MEMORY_QUANTITIES` (exact conversion to GiB, NaN when not measured;
            never 0 for a missing value), then ``kv_cache_tokens`` and
            ``num_gpu_blocks``. Values stay in their ``measured_scope`` (per GPU unless
            ``sum_over_gpus``). ``flags`` holds a tuple of strings.
        """
        import pandas as pd  # lazy: pandas costs ~0.2 s at import; only the DataFrame view needs it

        rows = [_frame_row(rec) for rec in self.records]
        columns = list(FRAME_COLUMNS) + [f"{q}_gib" for q in MEMORY_QUANTITIES] + list(COUNT_FIELDS)
        frame = pd.DataFrame(rows, columns=columns)
        for col in _INT_COLUMNS:
            frame[col] = frame[col].astype("Int64")
        for col in [f"{q}_gib" for q in MEMORY_QUANTITIES] + ["gpu_memory_gib", "gpu_memory_utilization"]:
            frame[col] = frame[col].astype("float64")
        frame["enforce_eager"] = frame["enforce_eager"].astype("boolean")
        frame["use_in_fit"] = frame["use_in_fit"].astype(bool)
        return frame


# --------------------------------------------------------------------------- schema

@lru_cache(maxsize=1)
def _schema() -> dict:
    text = resources.files("fitting").joinpath("schemas", SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator():
    import jsonschema  # lazy: ~0.05 s at import; the ingest and profile CLIs validate one record

    schema = _schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def split_measured_name(name: str) -> tuple[str, str]:
    """Split a measured field name into ``(quantity, unit)``.

    Parameters
    ----------
    name : str
        E.g. ``"peak_total_mb"``.

    Returns
    -------
    tuple of str
        ``("peak_total", "mb")``.

    Raises
    ------
    ValueError
        ``unknown unit`` when the suffix is not one of gib, mib, gb, mb, bytes;
        ``unknown quantity`` when the quantity is not in :data:`MEMORY_QUANTITIES`.
    """
    for unit in _UNITS:
        if name.endswith("_" + unit):
            quantity = name[: -len(unit) - 1]
            if quantity in MEMORY_QUANTITIES:
                return quantity, unit
            break
    for quantity in sorted(MEMORY_QUANTITIES, key=len, reverse=True):
        if name.startswith(quantity + "_"):
            suffix = name[len(quantity) + 1:]
            raise ValueError(f"unknown unit {suffix!r} in {name!r}; expected one of {', '.join(_UNITS)}")
    raise ValueError(f"unknown quantity in {name!r}; expected <quantity>_<unit> with quantity one of "
                     f"{', '.join(MEMORY_QUANTITIES)} or a count ({', '.join(COUNT_FIELDS)})")


# --------------------------------------------------------------------------- validation

def _walk(obj, prefix=""):
    """Yield (dotted_path, value) for every leaf of a JSON object."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _walk(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _walk(value, f"{prefix}[{i}]")
    else:
        yield prefix, obj


def _check_before_schema(obj: dict, path) -> None:
    """Checks whose messages are clearer than the schema's (or that it cannot make)."""
    for name, value in _walk(obj):
        if isinstance(value, float) and not math.isfinite(value):
            raise ProfileError(path, name, f"not a finite number ({value!r}); a missing value is null or absent")
    framework = obj.get("framework")
    if "framework" in obj and framework not in FRAMEWORKS:
        raise ProfileError(path, "framework", f"unknown framework {framework!r}; expected one of {', '.join(FRAMEWORKS)}")
    measured = obj.get("measured")
    if isinstance(measured, dict):
        seen: dict[str, str] = {}
        for name, value in measured.items():
            if name in COUNT_FIELDS:
                if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                    raise ProfileError(path, f"measured.{name}", f"negative count {value!r}")
                continue
            try:
                quantity, _unit = split_measured_name(name)
            except ValueError as exc:
                raise ProfileError(path, f"measured.{name}", str(exc)) from None
            if quantity in seen:
                raise ProfileError(path, f"measured.{name}",
                                   f"{quantity} given twice ({seen[quantity]} and {name}); keep one unit")
            seen[quantity] = name
            if isinstance(value, bool) or (value is not None and not isinstance(value, (int, float))):
                raise ProfileError(path, f"measured.{name}", f"memory must be a number or null, got {value!r}")
            if value is not None and value < 0:
                raise ProfileError(path, f"measured.{name}", f"negative memory {value!r}")


def _schema_error(exc, path) -> ProfileError:
    location = ".".join(str(p) for p in exc.absolute_path)
    if exc.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", exc.message)
        name = f"{location}.{missing[0]}" if location and missing else (missing[0] if missing else location)
        return ProfileError(path, name or "profile", "missing required field")
    if exc.validator == "additionalProperties":
        extra = re.findall(r"'([^']+)'", exc.message)
        name = f"{location}.{extra[0]}" if location and extra else (extra[0] if extra else location)
        return ProfileError(path, name or "profile", f"unknown field ({exc.message})")
    return ProfileError(path, location or "profile", exc.message)


def _check_after_schema(obj: dict, path) -> None:
    if path is not None and Path(path).suffix == ".json" and Path(path).stem != obj["profile_id"]:
        raise ProfileError(path, "profile_id",
                           f"{obj['profile_id']!r} does not match the file name stem {Path(path).stem!r}")
    use = obj.get("use_in_fit", True)
    if not use and not obj.get("exclude_reason"):
        raise ProfileError(path, "exclude_reason", "required (non-empty) when use_in_fit is false")
    values = [v for k, v in obj["measured"].items() if v is not None]
    if not values and use:
        raise ProfileError(path, "measured", "no measured value; a record kept without one must have use_in_fit false")


def validate_profile(obj: Any, path=None) -> dict:
    """Validate one profile object against schema v1 and the semantic rules.

    Parameters
    ----------
    obj : dict
        Parsed profile JSON.
    path : str or Path, optional
        File it came from; named in errors, and its stem must equal ``profile_id``.

    Returns
    -------
    dict
        ``obj`` itself (unchanged).

    Raises
    ------
    ProfileError
        The first problem found, as ``<path>: <field>: <reason>``. Beyond the schema:
        NaN/inf anywhere, a negative memory value, an unknown unit suffix or quantity
        in ``measured``, one quantity given in two units, an unknown framework,
        ``profile_id`` not equal to the file name stem, ``use_in_fit: false`` without
        ``exclude_reason``, an empty ``measured`` in a record used for fitting.
    """
    if not isinstance(obj, dict):
        raise ProfileError(path, "profile", f"a profile is a JSON object, got {type(obj).__name__}")
    _check_before_schema(obj, path)
    errors = sorted(_validator().iter_errors(obj), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        raise _schema_error(errors[0], path)
    _check_after_schema(obj, path)
    return obj


# --------------------------------------------------------------------------- loading

def load_profile(path) -> ProfileRecord:
    """Read and validate one profile file.

    Parameters
    ----------
    path : str or Path
        A ``.json`` file.

    Returns
    -------
    ProfileRecord

    Raises
    ------
    ProfileError
        Unreadable file, invalid JSON (with line and column) or an invalid profile.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(path, "file", f"cannot read: {exc}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(path, "json", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    validate_profile(obj, path)
    return ProfileRecord(path, obj)


def load_profiles(directory, strict: bool = True) -> ProfileSet:
    """Load every ``*.json`` profile under ``directory`` (recursively, sorted).

    Parameters
    ----------
    directory : str or Path
        Folder of profiles (a single file is accepted too).
    strict : bool, default True
        True: the first bad file raises. False: bad files (and later duplicates of a
        profile id) are left out and listed in ``ProfileSet.skipped`` with the reason.

    Returns
    -------
    ProfileSet

    Raises
    ------
    FileNotFoundError
        ``directory`` does not exist.
    ProfileError
        With ``strict=True``: the first invalid file, or a profile id used twice.
    """
    root = Path(directory)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such profile directory")
    files = [root] if root.is_file() else sorted(
        p for p in root.rglob("*.json")
        if p.is_file() and not _NON_PROFILE_DIRS.intersection(p.relative_to(root).parts[:-1])
    )
    result = ProfileSet()
    seen: dict[str, Path] = {}
    for file in files:
        try:
            record = load_profile(file)
            other = seen.get(record.profile_id)
            if other is not None:
                raise ProfileError(file, "profile_id", f"duplicate profile id {record.profile_id!r} (also in {other})")
        except ProfileError as exc:
            if strict:
                raise
            result.skipped.append((file, str(exc)))
            continue
        seen[record.profile_id] = file
        result.records.append(record)
    return result


#: Sub-folders a profiling study writes next to its profiles that hold other records
#: (error records, captured logs, raw benchmark reports kept verbatim): never read as profiles.
_NON_PROFILE_DIRS = frozenset({"errors", "logs", "reports"})


def _frame_row(rec: ProfileRecord) -> dict:
    d = rec.data
    model, gpu, par = d.get("model") or {}, d.get("gpu") or {}, d.get("parallel") or {}
    work, prec = d.get("workload") or {}, d.get("precision") or {}
    eng, prov, meas = d.get("engine_settings") or {}, d.get("provenance") or {}, d.get("measured") or {}
    row = {
        "profile_id": d["profile_id"], "path": str(rec.path) if rec.path is not None else None,
        "framework": d["framework"], "framework_version": d.get("framework_version"),
        "framework_variant": d.get("framework_variant"), "engine": d.get("engine"),
        "model_id": model.get("id"), "gpu_name": gpu.get("name"), "gpu_memory_gib": gpu.get("memory_gib"),
        "gpu_count": gpu.get("count"), "tp": par.get("tp"), "pp": par.get("pp"),
        "dtype": prec.get("dtype"), "quantization": prec.get("quantization"),
        "kv_cache_dtype": prec.get("kv_cache_dtype"),
        "gpu_memory_utilization": eng.get("gpu_memory_utilization"), "enforce_eager": eng.get("enforce_eager"),
        "kv_cache_mode": d.get("kv_cache_mode"), "measured_scope": d.get("measured_scope", "per_gpu"),
        "use_in_fit": d.get("use_in_fit", True), "exclude_reason": d.get("exclude_reason"),
        "flags": tuple(d.get("flags", ())), "provenance_kind": prov.get("kind"),
        "source": prov.get("url") or prov.get("ref"), "series": d.get("series"),
        "attention_impl": eng.get("attention_impl"), "phase": work.get("phase"),
        "measurement_notes": d.get("measurement_notes"), "provenance_notes": prov.get("notes"),
        "provenance_evidence": prov.get("evidence"), "provenance_date": prov.get("date"),
        "n_ubatch": eng.get("n_ubatch"), "flash_attn": eng.get("flash_attn"),
        "mem_fraction_static": eng.get("mem_fraction_static"), "max_total_tokens": eng.get("max_total_tokens"),
        "language_model_only": eng.get("language_model_only"),
        "cuda_graph_estimate_gib": eng.get("cuda_graph_estimate_gib"),
        # the units the figures were stored in (``mb``: 10^6 B, ``gib``: 2^30 B), comma-joined:
        # what a source's "MB"/"GB" was read as (fitting.overhead.unit_bases)
        "measured_units": ",".join(sorted({split_measured_name(k)[1] for k, v in meas.items()
                                           if v is not None and k not in COUNT_FIELDS})) or None,
        "n_gpu_layers": eng.get("n_gpu_layers"), "n_layers_total": eng.get("n_layers_total"),
        "model_runner": eng.get("model_runner"),
        # vLLM's torch.compile cache at the start ("cold" / "warm"), where its log shows it
        "compile_cache": eng.get("compile_cache"),
        "cuda_memory_fraction": eng.get("cuda_memory_fraction"),
    }
    for key in ("batch_size", "input_len", "output_len", "context_len", "max_model_len", "max_num_seqs",
                "max_num_batched_tokens"):
        row[key] = work.get(key)
    row.update({f"{q}_gib": math.nan for q in MEMORY_QUANTITIES})
    row.update(rec.measured_gib())
    for key in COUNT_FIELDS:
        row[key] = meas.get(key)
    return row


# --------------------------------------------------------------------------- writing

def _ordered(obj: Any, schema: dict) -> Any:
    """Return ``obj`` with keys in the schema's property order (unknown keys sorted)."""
    if not isinstance(obj, dict):
        return obj
    props = schema.get("properties", {})
    order = list(props)
    if schema is _schema().get("properties", {}).get("measured"):
        order = [f"{q}_{u}" for q in MEMORY_QUANTITIES for u in _UNITS] + list(COUNT_FIELDS)
    rank = {k: i for i, k in enumerate(order)}
    keys = sorted(obj, key=lambda k: (rank.get(k, len(rank)), k))
    return {k: _ordered(obj[k], props.get(k, {})) for k in keys}


def dumps_profile(record: dict) -> str:
    """Serialise a profile deterministically (schema key order, 2-space indent, final newline)."""
    return json.dumps(_ordered(record, _schema()), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_profile(record: dict, directory) -> Path:
    """Validate ``record`` and write it atomically to ``<directory>/<profile_id>.json``.

    Parameters
    ----------
    record : dict
        Profile object (schema v1).
    directory : str or Path
        Target folder, created if needed.

    Returns
    -------
    Path
        The file written. It is written to a temporary file in the same folder and
        moved into place with ``os.replace``, so readers never see a partial file.

    Raises
    ------
    ProfileError
        The record is invalid (nothing is written).
    """
    directory = Path(directory)
    target = directory / f"{record.get('profile_id')}.json"
    validate_profile(record, target)
    text = dumps_profile(record)
    return atomic_write_text(target, text)


def profile_converter(path) -> str | None:
    """``provenance.converter`` of the profile file at ``path`` (None: unreadable, not a profile,
    or no converter named). Converters sharing a folder tell their files apart by it."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    converter = (obj.get("provenance") or {}).get("converter") if isinstance(obj, dict) else None
    return converter if isinstance(converter, str) and converter else None


def write_converter_output(profiles: list[dict], root, converter: str, frameworks) -> list[Path]:
    """Write ``profiles`` to ``<root>/<framework>/`` (atomic per file) and remove the files that
    ``converter`` (a ``provenance.converter`` prefix) wrote before and no longer produces, in the
    ``frameworks`` folders; other converters' files are never touched.

    Returns
    -------
    list of Path
        The files written.
    """
    root = Path(root)
    written = [write_profile(p, root / p["framework"]) for p in profiles]
    keep = {p.resolve() for p in written}
    for framework in frameworks:
        folder = root / framework
        if folder.is_dir():
            for path in folder.glob("*.json"):
                if path.resolve() not in keep and (profile_converter(path) or "").startswith(converter):
                    path.unlink()
    return written
