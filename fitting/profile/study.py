"""Profiling studies: YAML files that expand to scenarios.

A study file names a study and gives a ``grid``: one mapping, or a list of mappings, of
scenario fields. A field given as a list is an axis; each grid block expands to the cross
product of its axes (over the study's ``defaults``), and the study is the union of its
blocks. Every scenario has a stable id computed from its content, so ``--resume`` and
``--shard`` agree between runs, machines and key orders.

Example::

    name: batch-scaling
    description: Non-KV footprint against batch size.
    defaults: {input_len: 512, output_len: 128, load_format: dummy}
    grid:
      - {model: [meta-llama/Llama-3.2-1B, Qwen/Qwen2.5-7B], batch_size: [1, 8, 64]}
      - {model: meta-llama/Llama-3.1-70B, tp: 4, batch_size: [1, 8, 64]}
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from dataclasses import fields as dc_fields
from pathlib import Path

import yaml

BACKENDS = ("vllm", "transformers")
DTYPES = ("auto", "float16", "bfloat16", "float32")
KV_CACHE_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2")
QUANTIZATIONS = ("awq", "awq_marlin", "gptq", "gptq_marlin", "fp8", "compressed-tensors", "bitsandbytes", "marlin")
LOAD_FORMATS = ("auto", "dummy")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")
_STUDY_KEYS = ("name", "description", "backend", "timeout_s", "defaults", "grid", "expected_architecture", "notes")


class StudyError(ValueError):
    """A bad study file: ``<path>: <field>: <reason>``."""

    def __init__(self, path, field: str, reason: str):
        self.path, self.field, self.reason = (str(path) if path is not None else "<study>"), field, reason
        super().__init__(f"{self.path}: {field}: {reason}")


@dataclass(frozen=True)
class Scenario:
    """One run of a study: a model, a workload and the engine settings.

    Lengths are tokens per sequence; ``tp`` is the tensor-parallel size (GPUs);
    ``gpu_memory_utilization`` is vLLM's fraction of each GPU's memory (0-1].
    ``max_model_len=None`` means ``input_len + output_len``; ``trust_remote_code=None``
    means the registry decides.
    """

    model: str
    backend: str = "vllm"
    batch_size: int = 1
    input_len: int = 512
    output_len: int = 128
    tp: int = 1
    dtype: str = "bfloat16"
    kv_cache_dtype: str = "auto"
    quantization: str | None = None
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.9
    enforce_eager: bool = False
    load_format: str = "auto"
    trust_remote_code: bool | None = None

    @property
    def context_len(self) -> int:
        """Tokens per sequence the engine must hold: ``max_model_len`` or input + output."""
        return self.max_model_len if self.max_model_len is not None else self.input_len + self.output_len

    def to_dict(self) -> dict:
        """All fields, in declaration order."""
        return {f.name: getattr(self, f.name) for f in dc_fields(self)}

    def content(self) -> dict:
        """The fields that identify the scenario: model, backend and every non-default value."""
        out = {"model": self.model, "backend": self.backend}
        for f in dc_fields(self):
            value = getattr(self, f.name)
            if f.name not in out and value != f.default:
                out[f.name] = value
        return out

    @property
    def content_hash(self) -> str:
        """First 10 hex digits of the SHA-256 of the canonical JSON of :meth:`content`."""
        blob = json.dumps(self.content(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    @property
    def id(self) -> str:
        """Stable id, readable prefix + content hash, e.g. ``vllm-Llama-3.2-1B-b8-i512-o128-0123456789``.

        Also the profile's ``profile_id`` and file stem.
        """
        tail = re.sub(r"[^A-Za-z0-9._-]+", "-", self.model.rsplit("/", 1)[-1]).strip("-._") or "model"
        return f"{self.backend}-{tail[:60]}-b{self.batch_size}-i{self.input_len}-o{self.output_len}-{self.content_hash}"


_FIELD_NAMES = tuple(f.name for f in dc_fields(Scenario))
_DEFAULTS = {f.name: f.default for f in dc_fields(Scenario) if f.name != "model"}


@dataclass(frozen=True)
class Study:
    """A loaded, validated study.

    Attributes
    ----------
    name, description : str
    path : str or None
        The file it came from.
    backend : str or None
        Backend of scenarios that do not name one.
    timeout_s : float or None
        Time limit of one scenario, seconds.
    scenarios : tuple of Scenario
        The expansion, in file order, duplicates removed.
    expected_architecture : dict
        ``{model_id: {field: value}}`` facts the registry must agree with (checked by tests).
    """

    name: str
    description: str
    path: str | None
    backend: str | None
    timeout_s: float | None
    scenarios: tuple
    expected_architecture: dict


# --------------------------------------------------------------------------- validation


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_value(name: str, v, path, where: str):
    """Validate one scalar value of a scenario field; return it normalised."""
    def bad(reason):
        raise StudyError(path, where, f"{reason}, got {v!r}")

    if name == "model":
        if not isinstance(v, str) or not v.strip():
            bad("expected a model id (non-empty string)")
        return v.strip()
    if name in ("batch_size", "input_len", "output_len", "tp"):
        if not _is_int(v) or v < 1:
            bad("expected an integer >= 1")
        return v
    if name == "max_model_len":
        if v is not None and (not _is_int(v) or v < 1):
            bad("expected an integer >= 1 or null")
        return v
    if name == "gpu_memory_utilization":
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
            bad("expected a number in (0, 1]")
        return float(v)
    if name in ("enforce_eager",):
        if not isinstance(v, bool):
            bad("expected true or false")
        return v
    if name == "trust_remote_code":
        if v is not None and not isinstance(v, bool):
            bad("expected true, false or null")
        return v
    choices = {"backend": BACKENDS, "dtype": DTYPES, "kv_cache_dtype": KV_CACHE_DTYPES,
               "load_format": LOAD_FORMATS, "quantization": QUANTIZATIONS}[name]
    if name == "quantization" and v is None:
        return None
    if v not in choices:
        bad(f"expected one of {', '.join(choices)}" + (" or null" if name == "quantization" else ""))
    return v


def _check_block(block, path, where: str, *, need_model: bool) -> dict:
    """Validate a mapping of scenario fields (scalars or lists); return {field: [values]}."""
    if not isinstance(block, dict):
        raise StudyError(path, where, f"expected a mapping of scenario fields, got {type(block).__name__}")
    axes = {}
    for key, value in block.items():
        if key not in _FIELD_NAMES:
            raise StudyError(path, f"{where}.{key}", f"unknown scenario field; expected one of {', '.join(_FIELD_NAMES)}")
        if isinstance(value, list):
            if not value:
                raise StudyError(path, f"{where}.{key}", "empty list: an axis needs at least one value")
            axes[key] = [_check_value(key, v, path, f"{where}.{key}[{i}]") for i, v in enumerate(value)]
        elif isinstance(value, dict):
            raise StudyError(path, f"{where}.{key}", "expected a value or a list of values, got a mapping")
        else:
            axes[key] = [_check_value(key, value, path, f"{where}.{key}")]
    if need_model and "model" not in axes:
        raise StudyError(path, f"{where}.model", "missing: every grid block needs a model (here or in defaults)")
    return axes


def _expand(axes: dict, path, where: str, backend: str | None) -> list:
    names = [n for n in _FIELD_NAMES if n in axes]
    out = []
    for combo in itertools.product(*(axes[n] for n in names)):
        values = dict(zip(names, combo))
        values.setdefault("backend", backend or _DEFAULTS["backend"])
        sc = Scenario(**values)
        if sc.max_model_len is not None and sc.max_model_len < sc.input_len + sc.output_len:
            raise StudyError(path, f"{where}.max_model_len",
                             f"{sc.max_model_len} < input_len + output_len = {sc.input_len + sc.output_len} "
                             f"(model {sc.model}, batch {sc.batch_size})")
        out.append(sc)
    return out


def parse_study(data, path=None) -> Study:
    """Validate a study mapping (as read from YAML) and expand it to scenarios.

    Raises
    ------
    StudyError
        On the first bad field, naming the file and the field (``grid[1].batch_size[2]``).
    """
    if not isinstance(data, dict):
        raise StudyError(path, "<top>", f"expected a mapping with keys {', '.join(_STUDY_KEYS)}")
    for key in data:
        if key not in _STUDY_KEYS:
            raise StudyError(path, str(key), f"unknown key; expected one of {', '.join(_STUDY_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise StudyError(path, "name", f"expected a name of letters, digits, '.', '_' or '-', got {name!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise StudyError(path, "description", f"expected a string, got {description!r}")
    backend = data.get("backend")
    if backend is not None:
        backend = _check_value("backend", backend, path, "backend")
    timeout_s = data.get("timeout_s")
    if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
                                  or timeout_s <= 0):
        raise StudyError(path, "timeout_s", f"expected a positive number of seconds, got {timeout_s!r}")
    defaults = data.get("defaults", {}) or {}
    default_axes = _check_block(defaults, path, "defaults", need_model=False)
    grid = data.get("grid")
    if grid is None:
        raise StudyError(path, "grid", "missing: a study needs a grid (a mapping or a list of mappings)")
    blocks = [grid] if isinstance(grid, dict) else grid
    if not isinstance(blocks, list) or not blocks:
        raise StudyError(path, "grid", "expected a mapping or a non-empty list of mappings")
    seen, scenarios = set(), []
    for i, block in enumerate(blocks):
        where = "grid" if isinstance(grid, dict) else f"grid[{i}]"
        axes = dict(default_axes)
        axes.update(_check_block(block, path, where, need_model=False))
        if "model" not in axes:
            raise StudyError(path, f"{where}.model", "missing: every grid block needs a model (here or in defaults)")
        for sc in _expand(axes, path, where, backend):
            if sc.id not in seen:
                seen.add(sc.id)
                scenarios.append(sc)
    expected = data.get("expected_architecture", {}) or {}
    if not isinstance(expected, dict) or not all(isinstance(v, dict) for v in expected.values()):
        raise StudyError(path, "expected_architecture", "expected a mapping {model_id: {field: value}}")
    return Study(name=name, description=description, path=None if path is None else str(path), backend=backend,
                 timeout_s=None if timeout_s is None else float(timeout_s), scenarios=tuple(scenarios),
                 expected_architecture=expected)


def load_study(path) -> Study:
    """Read a study YAML file (``yaml.safe_load``), validate and expand it.

    Parameters
    ----------
    path : str or Path
        The study file.

    Returns
    -------
    Study

    Raises
    ------
    StudyError
        Naming the file and the bad field.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise StudyError(path, "<file>", f"cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StudyError(path, "<yaml>", f"not valid YAML: {exc}") from None
    return parse_study(data, path)


def with_backend(scenarios, backend: str | None) -> list:
    """Scenarios to run with ``--backend``: those of that backend (studies that list several
    backends keep only the matching ones); ``None`` keeps all.

    A study that does not name a backend expands with the default ``vllm``; passing
    ``transformers`` here re-targets those scenarios (their ids change with the backend).
    """
    if backend is None:
        return list(scenarios)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    backends = {sc.backend for sc in scenarios}
    if backend in backends:
        return [sc for sc in scenarios if sc.backend == backend]
    out, seen = [], set()
    for sc in scenarios:
        new = Scenario(**{**sc.to_dict(), "backend": backend})
        if new.id not in seen:
            seen.add(new.id)
            out.append(new)
    return out


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``K/N`` (1 <= K <= N) into ``(K, N)``."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ValueError(f"--shard expects K/N with 1 <= K <= N (e.g. 2/8), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def shard(scenarios, k: int, n: int) -> list:
    """The K-th of N shards (1-based): a deterministic partition of ``scenarios``.

    Scenarios are ranked by id and dealt round-robin, so the N shards are disjoint, their
    union is the whole study, sizes differ by at most one, and the partition does not
    depend on file order. Returned in the input order.
    """
    if not 1 <= k <= n:
        raise ValueError(f"shard {k}/{n}: expected 1 <= K <= N")
    ranked = sorted(sc.id for sc in scenarios)
    mine = {sid for i, sid in enumerate(ranked) if i % n == k - 1}
    return [sc for sc in scenarios if sc.id in mine]
