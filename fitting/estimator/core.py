r"""The estimator: GPU memory of a configuration, with prediction intervals and "will it fit?".

:class:`Estimator` reads one coefficient file (``fitted_params/<framework>/latest.json`` or
a version file), evaluates the selected overhead spec with the same
:mod:`fitting.overhead.specs` code the refit used, and derives intervals from the file's
covariance, residual scale, residual degrees of freedom and error mode
(:mod:`fitting.stats.intervals`). Weights, KV cache and activations are exact physics
(:mod:`fitting.physics.memory`).

Per GPU, in GiB:

* ``non_kv = weights + activations + overhead``: for frameworks with a KV *pool* (vLLM,
  SGLang, TRT-LLM, TGI) this is the fitted response, what the framework subtracts before
  sizing its pool; for frameworks whose KV cache *grows* (transformers, llama.cpp) the
  fitted response is the peak ``weights + kv + activations + overhead`` and ``non_kv`` is
  that minus the workload KV.
* ``kv_cache``: the workload's KV cache, ``batch_size`` sequences of
  ``input_len + output_len`` tokens (vLLM: rounded up to whole 16-token blocks).
* ``cuda_graph``: a separately fitted term where the file has one (vLLM), else None.
* ``total = non_kv + cuda_graph + kv_cache``; ``total_all_gpus = total x tp x pp``.

"Fits" on a GPU with ``G`` GiB (the driver-reported total, see :mod:`fitting.data.gpus`):

* vLLM at ``gpu_memory_utilization`` ``u``: the KV pool ``u G - non_kv`` holds the workload
  and the CUDA graphs fit in the rest, ``P(non_kv + kv <= u G) * P(cuda_graph <= (1-u) G)``
  (independent fitted terms).
* every other framework: ``P(total <= G)``.

Only numpy and the package's physics are imported on this path (pandas only when a
DataFrame is passed or returned).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path

import numpy as np

from fitting.data.frameworks import (
    default_dtype,
    framework_info,
    vllm_default_max_num_seqs,
)
from fitting.estimator import schema_lite
from fitting.stats.intervals import Predictive, predictive

__all__ = ["Estimator", "Prediction", "FittedTerm", "CoefficientFileError", "validate_document",
           "SUPPORTED_SCHEMA_VERSIONS", "OUTPUT_COLUMNS"]

_GIB = float(2**30)
SUPPORTED_SCHEMA_VERSIONS = (1,)
_SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "coefficients-v1.schema.json"
#: Frameworks that shard attention heads over tensor-parallel ranks (tp must divide heads).
_HEAD_SHARDING = frozenset({"vllm", "sglang", "trtllm", "tgi"})
#: Search limits of the inverse queries.
MAX_BATCH_SEARCH = 2**20
MAX_CONTEXT_SEARCH = 2**24
#: Relative standard error of a fitted value above which a warning is given.
POOR_PRECISION_RSE = 0.5
#: Candidates evaluated per round of the (vectorised) inverse searches.
_SEARCH_SPLIT = 64

#: Columns of the vectorised output (besides the echoed inputs), GiB per GPU unless named.
OUTPUT_COLUMNS = (
    "weights_gib", "activations_gib", "overhead_gib", "overhead_lower_gib", "overhead_upper_gib",
    "non_kv_gib", "non_kv_lower_gib", "non_kv_upper_gib", "cuda_graph_gib", "cuda_graph_lower_gib",
    "cuda_graph_upper_gib", "kv_cache_gib", "kv_bytes_per_token", "total_gib", "total_lower_gib",
    "total_upper_gib", "n_gpus", "total_all_gpus_gib", "total_all_gpus_lower_gib",
    "total_all_gpus_upper_gib", "outside_fitted_range",
)


class CoefficientFileError(ValueError):
    """A coefficient file is missing, unreadable or invalid: ``<path>: <field>: <reason>``."""

    def __init__(self, path, field_, reason):
        self.path, self.field, self.reason = str(path), field_, reason
        super().__init__(f"{path}: {field_}: {reason}")


# ----------------------------------------------------------------------------- helpers
@lru_cache(maxsize=1)
def _schema():
    with open(_SCHEMA_PATH, encoding="utf-8") as fh:
        return json.load(fh)


def _resolve_path(path_or_dir) -> Path:
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


def _num(v, default=math.nan):
    return default if v is None else float(v)


@dataclass(frozen=True)
class FittedTerm:
    """One fitted spec of a coefficient file: estimates, covariance and error model.

    :meth:`distribution` gives the predictive distribution of the spec's response
    (:class:`fitting.stats.intervals.Predictive`) at a features dict of
    :func:`fitting.overhead.specs.build_features`.
    """

    name: str
    spec: object
    theta: np.ndarray
    cov: np.ndarray
    residual_scale: float
    df_resid: float
    error_mode: str
    status: str
    data_ranges: dict

    @classmethod
    def from_doc(cls, name, d, path, where, fallback=None):
        from fitting.overhead.specs import get_spec

        spec_name = d.get("spec") or d.get("name") or name
        try:
            spec = get_spec(spec_name)
        except ValueError as exc:
            raise CoefficientFileError(path, where, str(exc)) from None
        by_name = {p["name"]: p for p in d.get("params", [])}
        missing = [n for n in spec.param_names if n not in by_name]
        if missing:
            raise CoefficientFileError(path, f"{where}.params", f"missing parameter(s) {missing} of spec {spec_name!r}")
        theta = np.array([_num(by_name[n].get("estimate"), 0.0) for n in spec.param_names])
        k = len(theta)
        cov_doc = d.get("covariance")
        order = [p["name"] for p in d.get("params", [])]
        if cov_doc is None or len(cov_doc) == 0:
            cov = np.zeros((k, k))
        else:
            c = np.array([[_num(v, 0.0) for v in row] for row in cov_doc], dtype=float)
            if c.shape != (len(order), len(order)):
                raise CoefficientFileError(path, f"{where}.covariance",
                                           f"shape {c.shape} does not match {len(order)} params")
            idx = [order.index(n) for n in spec.param_names]
            cov = c[np.ix_(idx, idx)]
        fb = fallback or {}
        scale = d.get("residual_scale", fb.get("residual_scale"))
        df = d.get("df_resid", fb.get("df_resid"))
        return cls(name=spec_name, spec=spec, theta=theta, cov=cov,
                   residual_scale=_num(scale), df_resid=_num(df, math.inf) if df else math.inf,
                   error_mode=d.get("error_mode", "log"), status=d.get("status", "fitted"),
                   data_ranges=d.get("data_ranges") or {})

    def distribution(self, features) -> Predictive:
        """Predictive distribution of the response (GiB per GPU) at ``features``."""
        f = np.asarray(self.spec.predict_response(features, self.theta), dtype=float)
        jac = np.asarray(self.spec.jacobian(features, self.theta), dtype=float)
        return predictive(f, jac.reshape(-1, len(self.theta)), self.cov, residual_scale=self.residual_scale,
                          df_resid=self.df_resid, error_mode=self.error_mode)


@dataclass
class Prediction:
    """One configuration's memory (GiB per GPU unless named) with ``1 - alpha`` intervals.

    ``to_dict()`` gives the JSON form that ``python -m fitting.estimate --json`` prints.
    """

    framework: str
    model: str
    params_version: int | None
    weights_gib: float
    activations_gib: float
    overhead_gib: float
    overhead_lower_gib: float
    overhead_upper_gib: float
    non_kv_gib: float
    non_kv_lower_gib: float
    non_kv_upper_gib: float
    cuda_graph_gib: float | None
    cuda_graph_lower_gib: float | None
    cuda_graph_upper_gib: float | None
    kv_cache_gib: float
    kv_bytes_per_token: float
    total_gib: float
    total_lower_gib: float
    total_upper_gib: float
    n_gpus: int
    total_all_gpus_gib: float
    total_all_gpus_lower_gib: float
    total_all_gpus_upper_gib: float
    alpha: float
    warnings: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    defaults_applied: dict = field(default_factory=dict)
    params_file: str | None = None
    status: str = "fitted"
    spec: str = ""
    error_mode: str = "log"
    fit_probability: float | None = None

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready: NaN becomes None)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            out[f.name] = v
        return out


# ------------------------------------------------------------------------------ Estimator
class Estimator:
    """Memory estimates of one framework from its coefficient file.

    Use :meth:`load`. Attributes: ``framework``, ``version`` (the coefficient file's
    version), ``status`` (``fitted``/``unfitted``), ``kv_cache_mode`` (``pool``/``growing``),
    ``selected_spec``, ``path``, ``document`` (the parsed file), ``term`` (the selected
    spec as a :class:`FittedTerm`) and ``cuda_graph`` (the CUDA-graph term, or None).

    Examples
    --------
    >>> est = Estimator.load("fitted_params/vllm")                      # doctest: +SKIP
    >>> p = est.predict("meta-llama/Llama-3.1-8B", batch_size=32,       # doctest: +SKIP
    ...                 input_len=4096, output_len=512)
    >>> p.total_gib, (p.total_lower_gib, p.total_upper_gib)             # doctest: +SKIP
    """

    def __init__(self, document: dict, *, path=None):
        path = str(path) if path is not None else "<coefficients>"
        validate_document(document, path)
        self.document = document
        self.path = path
        self.framework = document["framework"]
        try:
            self.info = framework_info(self.framework)
        except ValueError as exc:
            raise CoefficientFileError(path, "framework", str(exc)) from None
        self.version = document.get("version")
        self.status = document.get("status", "fitted")
        self.kv_cache_mode = document.get("kv_cache_mode") or self.info.kv_cache_mode
        self.selected_spec = document["selected_spec"]
        self.fallback = document.get("fallback")
        sel = document["specs"][self.selected_spec]
        self.term = FittedTerm.from_doc(self.selected_spec, sel, path, f"specs.{self.selected_spec}", self.fallback)
        if self.term.spec.response != "overhead":
            raise CoefficientFileError(path, "selected_spec", f"{self.selected_spec!r} is not an overhead spec")
        cg = document.get("cuda_graph")
        self.cuda_graph = (FittedTerm.from_doc("cuda_graph", cg, path, "cuda_graph") if cg and cg.get("params")
                           and cg.get("status", "fitted") == "fitted" else None)

    @classmethod
    def load(cls, path_or_dir) -> "Estimator":
        """Load and validate a coefficient file.

        Parameters
        ----------
        path_or_dir : str or Path
            A ``fitted_params/<framework>/`` folder (its ``latest.json``) or one
            ``vNNNN.json``/``latest.json`` file.

        Raises
        ------
        CoefficientFileError
            Missing file, invalid JSON, unknown schema version or a schema violation.
        """
        path = _resolve_path(path_or_dir)
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except json.JSONDecodeError as exc:
            raise CoefficientFileError(path, f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
        except OSError as exc:
            raise CoefficientFileError(path, "<file>", exc.strerror or str(exc)) from None
        return cls(doc, path=path)

    def __repr__(self):
        return (f"<Estimator {self.framework} v{self.version} ({self.status}, spec {self.selected_spec}, "
                f"{self.term.error_mode} errors)>")

    # -------------------------------------------------------------- inputs and defaults
    @property
    def defaults(self) -> dict:
        """The framework's own defaults this estimator applies to omitted settings."""
        d = dict(self.info.defaults)
        d.setdefault("batch_size", d.get("max_num_seqs", 1))
        return d

    def _workload(self, model, *, tp, pp, batch_size, input_len, output_len, max_model_len,
                  max_num_batched_tokens, dtype, quantization, kv_cache_dtype):
        """Resolve the model and fill defaults; returns (arch, entry, name, settings, defaults)."""
        arch, entry, name = _resolve_model(model)
        applied = {}
        if batch_size is None:
            batch_size = self.defaults["batch_size"]
            applied["batch_size"] = (f"{batch_size} (vLLM max_num_seqs default)" if self.framework == "vllm"
                                     else f"{batch_size}")
        if input_len is None and output_len is None:
            if max_model_len is None:
                max_model_len = arch.max_position_embeddings
                if max_model_len is None:
                    raise ValueError("give input_len/output_len or max_model_len: the model config has no "
                                     "max_position_embeddings to default to")
                applied["max_model_len"] = f"{max_model_len} (the model's max_position_embeddings)"
            input_len, output_len = max_model_len, 0
            applied["input_len"] = "max_model_len (each sequence fills the context)"
        else:
            input_len = 0 if input_len is None else input_len
            output_len = 0 if output_len is None else output_len
        if max_num_batched_tokens is None and "max_num_batched_tokens" in self.info.defaults:
            max_num_batched_tokens = self.info.defaults["max_num_batched_tokens"]
            applied["max_num_batched_tokens"] = f"{max_num_batched_tokens} (framework default)"
        if dtype is None:
            dtype = default_dtype(arch, self.framework)
            applied["dtype"] = f"{dtype} (from the model's torch_dtype {arch.torch_dtype!r})"
        if isinstance(quantization, str) and quantization.lower() in ("none", ""):
            quantization = None  # explicitly unquantized
        elif quantization is None and getattr(entry, "native_quantization", None):
            quantization = entry.native_quantization
            applied["quantization"] = f"{quantization} (the checkpoint's native format; --quantization none to override)"
        if kv_cache_dtype is None:
            kv_cache_dtype = "auto"
        settings = dict(tp=tp, pp=pp, batch_size=batch_size, input_len=input_len, output_len=output_len,
                        max_model_len=max_model_len, max_num_batched_tokens=max_num_batched_tokens,
                        dtype=dtype, quantization=quantization, kv_cache_dtype=kv_cache_dtype)
        self._check(arch, settings)
        return arch, entry, name, settings, applied

    def _check(self, arch, s):
        def arr(key):
            return np.asarray(s[key], dtype=float)

        for key in ("tp", "pp", "batch_size"):
            v = arr(key)
            if np.any(~np.isfinite(v)) or np.any(v < 1) or np.any(v != np.round(v)):
                raise ValueError(f"{key} must be a positive integer, got {_show(s[key])}")
        for key in ("input_len", "output_len"):
            v = arr(key)
            if np.any(~np.isfinite(v)) or np.any(v < 0):
                raise ValueError(f"{key} must be a non-negative number of tokens, got {_show(s[key])}")
        if np.any(arr("input_len") + arr("output_len") < 1):
            raise ValueError("input_len + output_len must be at least 1 token")
        if s["max_model_len"] is not None:
            mml = arr("max_model_len")
            if np.any(mml < 1):
                raise ValueError(f"max_model_len must be a positive number of tokens, got {_show(s['max_model_len'])}")
            if np.any(arr("input_len") + arr("output_len") > mml):
                raise ValueError("input_len + output_len exceeds max_model_len")
        if s["max_num_batched_tokens"] is not None and np.any(arr("max_num_batched_tokens") < 1):
            raise ValueError(f"max_num_batched_tokens must be positive, got {_show(s['max_num_batched_tokens'])}")
        if self.framework in _HEAD_SHARDING:
            tp = np.asarray(s["tp"]).astype(int)
            heads = arch.num_attention_heads
            if np.any(heads % tp):
                bad = int(np.asarray(tp)[np.asarray(heads % tp) != 0].flat[0])
                raise ValueError(f"tp={bad} does not divide num_attention_heads={heads} "
                                 f"({self.framework} shards attention heads over tensor-parallel ranks)")
            kvh = arch.num_kv_heads
            if not arch.is_mla and kvh and np.any((kvh % tp != 0) & (tp % kvh != 0)):
                bad = int(np.asarray(tp)[np.asarray((kvh % tp != 0) & (tp % kvh != 0))].flat[0])
                raise ValueError(f"tp={bad} and num_key_value_heads={kvh}: one must divide the other "
                                 f"({self.framework} shards or replicates KV heads)")

    # ------------------------------------------------------------------------ core
    def _physics_one(self, arch, s):
        """Features, workload KV (GiB) and KV bytes per token for scalar tp and pp."""
        from fitting import physics
        from fitting.overhead.specs import build_features

        feats = build_features(arch, framework=self.framework, tp=s["tp"], pp=s["pp"],
                               batch_size=s["batch_size"], input_len=s["input_len"],
                               output_len=s["output_len"], max_num_batched_tokens=s["max_num_batched_tokens"],
                               dtype=s["dtype"], quantization=s["quantization"],
                               kv_cache_dtype=s["kv_cache_dtype"])
        kvbpt = physics.kv_bytes_per_token(arch, kv_cache_dtype=s["kv_cache_dtype"], dtype=s["dtype"],
                                           tp=s["tp"], pp=s["pp"])
        if self.kv_cache_mode == "pool":
            seq = np.asarray(s["input_len"], float) + np.asarray(s["output_len"], float)
            kv = np.asarray(physics.kv_cache_bytes(
                arch, num_tokens=seq, num_seqs=np.asarray(s["batch_size"], float),
                kv_cache_dtype=s["kv_cache_dtype"], dtype=s["dtype"], tp=s["tp"], pp=s["pp"],
                block_size=self.info.defaults.get("block_size")), dtype=float) / _GIB
        else:
            kv = feats["kv_gib"]
        return feats, kv, kvbpt

    def _physics(self, arch, s):
        """:meth:`_physics_one` over arrays: the physics is evaluated once per distinct
        (tp, pp) pair (weights depend only on those) and scattered back."""
        keys = ("tp", "pp", "batch_size", "input_len", "output_len", "max_num_batched_tokens")
        arrays = {k: np.asarray(s[k]) for k in keys if s[k] is not None}
        shape = np.broadcast(*arrays.values()).shape
        if np.ndim(s["tp"]) == 0 and np.ndim(s["pp"]) == 0:
            feats, kv, kvbpt = self._physics_one(arch, s)
        else:
            b = {k: np.broadcast_to(v, shape).reshape(-1) for k, v in arrays.items()}
            key = b["tp"].astype(np.int64) * 65536 + b["pp"].astype(np.int64)
            n = key.size
            feats, kv, kvbpt = {}, np.empty(n), np.empty(n)
            for g in np.unique(key):  # few distinct (tp, pp) pairs: one boolean scan each
                rows = np.flatnonzero(key == g)
                sub = dict(s)
                sub.update({k: v[rows] for k, v in b.items()})
                sub["tp"], sub["pp"] = int(g // 65536), int(g % 65536)
                f_g, kv_g, bpt_g = self._physics_one(arch, sub)
                for k, v in f_g.items():
                    feats.setdefault(k, np.empty(n))[rows] = v
                kv[rows], kvbpt[rows] = kv_g, bpt_g
            feats = {k: v.reshape(shape) for k, v in feats.items()}
            kv, kvbpt = kv.reshape(shape), kvbpt.reshape(shape)
        return feats, np.broadcast_to(np.asarray(kv, float), shape), np.broadcast_to(np.asarray(kvbpt, float), shape)

    def _core(self, arch, s):
        """Distributions and physics for one architecture (arrays broadcast)."""
        feats, kv, kvbpt = self._physics(arch, s)
        y = self.term.distribution(feats)
        overhead = np.broadcast_to(np.asarray(self.term.spec.evaluate(feats, self.term.theta), float),
                                   y.center.shape)
        if self.kv_cache_mode == "pool":
            non_kv = y
            needed = y.shifted(kv)  # non-KV + workload KV: what the pool fraction must hold
        else:
            non_kv = y.shifted(-kv)
            needed = y
        kv = np.broadcast_to(kv, y.center.shape)
        cg = self.cuda_graph.distribution(feats) if self.cuda_graph is not None else None
        total = needed.plus(cg) if cg is not None else needed
        return dict(features=feats, y=y, overhead=overhead, kv=kv, kvbpt=np.broadcast_to(kvbpt, y.center.shape),
                    non_kv=non_kv, needed=needed, cg=cg, total=total)

    def _fit_prob(self, c, gpu_memory_gib, gpu_memory_utilization):
        G = np.asarray(gpu_memory_gib, dtype=float)
        if self.framework == "vllm":
            u = np.asarray(gpu_memory_utilization, dtype=float)
            p = c["needed"].cdf(u * G)
            if c["cg"] is not None:
                p = p * c["cg"].cdf((1.0 - u) * G)
            return p
        return c["total"].cdf(G)

    def _range_flags(self, arch, entry, s):
        """(messages, boolean array) for settings outside the fitted data ranges."""
        ranges = self.term.data_ranges or {}
        shape = np.broadcast(*[np.asarray(s[k]) for k in ("tp", "pp", "batch_size", "input_len")]).shape
        outside = np.zeros(shape, dtype=bool)
        msgs = []
        values = {"params_b": _params_b(arch, entry), "tp": s["tp"], "pp": s["pp"], "batch_size": s["batch_size"],
                  "n_gpus": np.asarray(s["tp"]) * np.asarray(s["pp"])}
        labels = {"params_b": "model size (billions of parameters)", "tp": "tp", "pp": "pp",
                  "batch_size": "batch size", "n_gpus": "GPU count"}
        for key, label in labels.items():
            rng = ranges.get(key)
            if not rng or rng[0] is None or rng[1] is None:
                continue
            v = np.asarray(values[key], dtype=float)
            bad = (v < rng[0]) | (v > rng[1])
            if np.any(bad):
                outside |= np.broadcast_to(bad, shape)
                shown = _show(values[key]) if np.size(v) == 1 else f"{int(np.sum(bad))} of {np.size(v)} values"
                msgs.append(f"{label} {shown} is outside the fitted data range [{_g(rng[0])}, {_g(rng[1])}]: "
                            "extrapolation")
        if self.status != "fitted":
            fb = self.fallback or {}
            msgs.append(f"framework {self.framework} is unfitted: overhead from {fb.get('source', 'fallback constants')}"
                        f"{' (' + fb['text'] + ')' if fb.get('text') else ''}; intervals are deliberately wide")
        if self.cuda_graph is None and self.framework == "vllm":
            msgs.append("CUDA graph memory is not modelled in this coefficient file (cuda_graph_gib is null)")
        return msgs, outside

    def _precision_flags(self, c):
        """Warnings where a fitted value's relative standard error exceeds
        :data:`POOR_PRECISION_RSE` (its interval is then dominated by parameter uncertainty)."""
        msgs = []
        if not math.isfinite(self.term.residual_scale):
            msgs.append(f"specs.{self.selected_spec} has no residual scale: intervals and fit probabilities are "
                        "undefined (null)")
        for label, d in (("overhead fit", c["y"]), ("CUDA-graph term", c["cg"])):
            rse = None if d is None else d.mean_rse
            if rse is None or not np.any(rse > POOR_PRECISION_RSE):
                continue
            worst = float(np.nanmax(rse))
            msgs.append(f"the {label} is poorly determined here (relative standard error of the fitted value up to "
                        f"{worst:.0%}): its interval is wide; check the fitted data ranges")
        return msgs

    def _table(self, c, alpha, n_gpus):
        lo, hi = alpha / 2.0, 1.0 - alpha / 2.0
        nk_lo, nk_hi = c["non_kv"].quantile(lo), c["non_kv"].quantile(hi)
        offset = c["non_kv"].median - c["overhead"]
        tot_lo, tot_hi = c["total"].quantile(lo), c["total"].quantile(hi)
        out = {
            "weights_gib": c["features"]["weights_gib"],
            "activations_gib": c["features"]["activations_gib"],
            "overhead_gib": c["overhead"],
            "overhead_lower_gib": nk_lo - offset,
            "overhead_upper_gib": nk_hi - offset,
            "non_kv_gib": c["non_kv"].median,
            "non_kv_lower_gib": nk_lo,
            "non_kv_upper_gib": nk_hi,
            "kv_cache_gib": c["kv"],
            "kv_bytes_per_token": c["kvbpt"],
            "total_gib": c["total"].median,
            "total_lower_gib": tot_lo,
            "total_upper_gib": tot_hi,
            "n_gpus": n_gpus,
        }
        if c["cg"] is not None:
            out["cuda_graph_gib"] = c["cg"].median
            out["cuda_graph_lower_gib"] = c["cg"].quantile(lo)
            out["cuda_graph_upper_gib"] = c["cg"].quantile(hi)
        else:
            nan = np.full(np.shape(c["kv"]), np.nan)
            out["cuda_graph_gib"] = out["cuda_graph_lower_gib"] = out["cuda_graph_upper_gib"] = nan
        out["total_all_gpus_gib"] = out["total_gib"] * n_gpus
        out["total_all_gpus_lower_gib"] = tot_lo * n_gpus
        out["total_all_gpus_upper_gib"] = tot_hi * n_gpus
        return out

    # ------------------------------------------------------------------------ predict
    def predict(self, model=None, *, tp=1, pp=1, batch_size=None, input_len=None, output_len=None,
                max_model_len=None, max_num_batched_tokens=None, dtype=None, quantization=None,
                kv_cache_dtype=None, alpha=0.10, gpu_memory_gib=None, gpu_memory_utilization=None,
                as_frame=None):
        """Memory of one configuration, or of many at once.

        Parameters
        ----------
        model : str, ModelEntry, Architecture or pandas.DataFrame
            Registry id or alias, a path to a ``config.json``, or a DataFrame with one
            configuration per row (columns named as the keyword arguments below, plus
            ``model``; missing columns take the keyword value).
        tp, pp : int or array of int
            Tensor / pipeline parallel degree; GPUs = tp x pp.
        batch_size : int or array, optional
            Concurrent sequences (vLLM: ``max_num_seqs``). Default: the framework's own
            (vLLM 256), else 1.
        input_len, output_len : int or array, optional
            Tokens per sequence (prompt, generated). If both are omitted every sequence
            fills ``max_model_len``.
        max_model_len : int, optional
            Context limit (tokens); default the model's ``max_position_embeddings``.
        max_num_batched_tokens : int or array, optional
            Tokens per forward pass (vLLM's profiling run); default the framework's (8192).
        dtype : str, optional
            Activation/weight dtype; default from the model's ``torch_dtype`` (vLLM
            "auto": bfloat16 stays, float16/float32 -> float16).
        quantization : str, optional
            Weight format (e.g. ``fp8``, ``awq``, ``gptq``), None for unquantised.
        kv_cache_dtype : str, optional
            ``auto`` (= dtype) or e.g. ``fp8``.
        alpha : float
            ``1 - alpha`` prediction intervals (default 0.10: 90 %).
        gpu_memory_gib : float, optional
            Adds ``fit_probability`` (vectorised output only; see :meth:`fit_probability`).
        gpu_memory_utilization : float, optional
            vLLM's fraction for ``fit_probability`` (default 0.9).
        as_frame : bool, optional
            Force a DataFrame (True) or a dict of arrays (False); by default scalars give a
            :class:`Prediction` and arrays/DataFrames a DataFrame.

        Returns
        -------
        Prediction or pandas.DataFrame or dict of ndarray
            GiB per GPU (``total_all_gpus_*``: all GPUs), intervals at ``1 - alpha``.
        """
        _check_alpha(alpha)
        kw = dict(tp=tp, pp=pp, batch_size=batch_size, input_len=input_len, output_len=output_len,
                  max_model_len=max_model_len, max_num_batched_tokens=max_num_batched_tokens, dtype=dtype,
                  quantization=quantization, kv_cache_dtype=kv_cache_dtype)
        if _is_frame(model):
            return self._predict_frame(model, kw, alpha, gpu_memory_gib, gpu_memory_utilization, as_frame)
        vector = any(np.ndim(v) > 0 for k, v in kw.items() if k not in ("dtype", "quantization", "kv_cache_dtype"))
        out, msgs, s, applied, name = self._predict_arrays(model, kw, alpha, gpu_memory_gib, gpu_memory_utilization)
        if not vector and not as_frame:
            if as_frame is False:
                return out
            return self._prediction(name, out, alpha, msgs, s, applied)
        if as_frame is False:
            return out
        import pandas as pd

        shape = out["total_gib"].shape
        cols = {k: np.broadcast_to(np.asarray(v), shape) for k, v in s.items()
                if v is not None and k in ("tp", "pp", "batch_size", "input_len", "output_len", "max_num_batched_tokens")}
        frame = pd.DataFrame({**cols, **out}, copy=False)
        frame.attrs.update({"framework": self.framework, "model": name, "params_version": self.version,
                            "alpha": alpha, "warnings": list(msgs), "defaults_applied": dict(applied)})
        return frame

    def _predict_arrays(self, model, kw, alpha, gpu_memory_gib=None, gpu_memory_utilization=None):
        """Core of :meth:`predict`: (dict of output arrays, warnings, settings, defaults, model name)."""
        arch, entry, name, s, applied = self._workload(model, **kw)
        c = self._core(arch, s)
        n_gpus = np.asarray(s["tp"]) * np.asarray(s["pp"])
        out = self._table(c, alpha, n_gpus)
        msgs, outside = self._range_flags(arch, entry, s)
        msgs += self._precision_flags(c)
        shape = np.broadcast(np.asarray(out["total_gib"]), outside).shape
        out = {k: np.broadcast_to(np.asarray(v), shape) for k, v in out.items()}
        out["outside_fitted_range"] = np.broadcast_to(outside, shape)
        if gpu_memory_gib is not None:
            _check_gpu(gpu_memory_gib)
            u = self._utilization(gpu_memory_utilization)
            out["fit_probability"] = np.broadcast_to(self._fit_prob(c, gpu_memory_gib, u), shape)
        return out, msgs, s, applied, name

    def _prediction(self, name, out, alpha, msgs, s, applied):
        def sc(v):
            return float(np.asarray(v).reshape(-1)[0])

        have_cg = self.cuda_graph is not None
        return Prediction(
            framework=self.framework, model=name, params_version=self.version,
            weights_gib=sc(out["weights_gib"]), activations_gib=sc(out["activations_gib"]),
            overhead_gib=sc(out["overhead_gib"]), overhead_lower_gib=sc(out["overhead_lower_gib"]),
            overhead_upper_gib=sc(out["overhead_upper_gib"]), non_kv_gib=sc(out["non_kv_gib"]),
            non_kv_lower_gib=sc(out["non_kv_lower_gib"]), non_kv_upper_gib=sc(out["non_kv_upper_gib"]),
            cuda_graph_gib=sc(out["cuda_graph_gib"]) if have_cg else None,
            cuda_graph_lower_gib=sc(out["cuda_graph_lower_gib"]) if have_cg else None,
            cuda_graph_upper_gib=sc(out["cuda_graph_upper_gib"]) if have_cg else None,
            kv_cache_gib=sc(out["kv_cache_gib"]), kv_bytes_per_token=sc(out["kv_bytes_per_token"]),
            total_gib=sc(out["total_gib"]), total_lower_gib=sc(out["total_lower_gib"]),
            total_upper_gib=sc(out["total_upper_gib"]), n_gpus=int(sc(out["n_gpus"])),
            total_all_gpus_gib=sc(out["total_all_gpus_gib"]),
            total_all_gpus_lower_gib=sc(out["total_all_gpus_lower_gib"]),
            total_all_gpus_upper_gib=sc(out["total_all_gpus_upper_gib"]),
            alpha=float(alpha), warnings=list(msgs), settings=_plain(s), defaults_applied=dict(applied),
            params_file=self.path, status=self.status, spec=self.term.name, error_mode=self.term.error_mode,
            fit_probability=sc(out["fit_probability"]) if "fit_probability" in out else None)

    def _predict_frame(self, frame, kw, alpha, gpu_memory_gib, gpu_memory_utilization, as_frame):
        """One row per configuration; rows grouped by (model, dtype, quantization, KV dtype),
        each group one vectorised call."""
        import pandas as pd

        if "model" not in frame.columns:
            raise ValueError("the configurations DataFrame needs a 'model' column")
        num_cols = [k for k in _NUMERIC_KEYS if k in frame.columns]
        str_cols = [k for k in ("dtype", "quantization", "kv_cache_dtype") if k in frame.columns]
        for k in num_cols:
            if frame[k].isna().any():
                raise ValueError(f"column {k!r} has missing values (give a value in every row or drop the column)")
        n = len(frame)
        results, warn_all = {}, []
        groups = frame.groupby(["model"] + str_cols, sort=False, dropna=False).indices
        for key, pos in groups.items():
            key = key if isinstance(key, tuple) else (key,)
            args = dict(kw)
            for k, v in zip(str_cols, key[1:]):
                args[k] = None if v is None or (isinstance(v, float) and math.isnan(v)) else v
            for k in num_cols:
                args[k] = frame[k].to_numpy()[pos]
            out, msgs, _, _, name = self._predict_arrays(key[0], args, alpha, gpu_memory_gib, gpu_memory_utilization)
            for k, v in out.items():
                if k not in results:
                    results[k] = np.empty(n, dtype=bool if v.dtype == bool else float)
                results[k][pos] = v
            warn_all.extend(f"{name}: {m}" for m in msgs)
        if as_frame is False:
            return results
        extra = pd.DataFrame(results, index=frame.index)
        out = pd.concat([frame, extra.drop(columns=[c for c in extra.columns if c in frame.columns])], axis=1)
        out.attrs.update({"framework": self.framework, "params_version": self.version, "alpha": alpha,
                          "warnings": list(dict.fromkeys(warn_all))})
        return out

    # ------------------------------------------------------------------ inverse queries
    def _utilization(self, u):
        if u is None:
            return float(self.info.defaults.get("gpu_memory_utilization", 1.0))
        u = np.asarray(u, dtype=float)
        if np.any((u <= 0) | (u > 1)):
            raise ValueError(f"gpu_memory_utilization must lie in (0, 1], got {_show(u)}")
        return u

    def fit_probability(self, model, *, gpu_memory_gib, gpu_memory_utilization=None, **workload):
        """Probability that the configuration fits on a GPU of ``gpu_memory_gib`` GiB.

        Parameters
        ----------
        model : str, ModelEntry or Architecture
        gpu_memory_gib : float or array
            Memory per GPU as the driver reports it (GiB; see :mod:`fitting.data.gpus`).
        gpu_memory_utilization : float, optional
            vLLM only (default 0.9): fits = the KV pool ``u G - non_kv`` holds the workload and
            the CUDA graphs fit in ``(1 - u) G``.
        **workload
            As :meth:`predict` (tp, pp, batch_size, input_len, output_len, ...).

        Returns
        -------
        float or ndarray
            Probability under the predictive distribution of the fitted error model.
        """
        _check_gpu(gpu_memory_gib)
        arch, entry, name, s, _ = self._workload(model, **_workload_kw(workload))
        p = self._fit_prob(self._core(arch, s), gpu_memory_gib, self._utilization(gpu_memory_utilization))
        return float(p) if np.ndim(p) == 0 else p

    def _max_search(self, model, vary, gpu_memory_gib, confidence, gpu_memory_utilization, workload, cap):
        _check_gpu(gpu_memory_gib)
        _check_prob(confidence, "confidence")
        u = self._utilization(gpu_memory_utilization)
        base = _workload_kw(workload)
        arch, entry, name, s, _ = self._workload(model, **base)

        shape = np.broadcast(*[np.asarray(s[k]) for k in ("tp", "pp", "batch_size", "input_len", "output_len")],
                             np.asarray(gpu_memory_gib), np.asarray(u)).shape
        G = np.asarray(gpu_memory_gib, float)[..., None]
        uu = np.asarray(u, float)[..., None]
        base_s = {k: (np.broadcast_to(np.asarray(v), shape)[..., None]
                      if k in _NUMERIC_KEYS and v is not None else v) for k, v in s.items()}

        def fits(cand):
            """(shape + (K,)) booleans: does candidate value k fit in row i?"""
            ss = dict(base_s)
            if vary == "batch_size":
                ss["batch_size"] = cand
            else:
                ss["input_len"], ss["output_len"], ss["max_model_len"] = cand, np.zeros_like(cand), None
            p = self._fit_prob(self._core(arch, ss), G, uu)
            return np.broadcast_to(p >= confidence, cand.shape)

        def refine(cand, lo, hi):
            """New (lo, hi): the largest candidate that fits, and the candidate after it
            (which does not fit); unchanged ends where no candidate fits / all fit."""
            ok = fits(cand)
            K = cand.shape[-1]
            j = np.where(ok.any(axis=-1), K - 1 - ok[..., ::-1].argmax(axis=-1), -1)  # last success
            take = np.take_along_axis
            new_lo = np.where(j >= 0, take(cand, np.maximum(j, 0)[..., None], -1)[..., 0], lo)
            new_hi = np.where(j + 1 < K, take(cand, np.minimum(j + 1, K - 1)[..., None], -1)[..., 0], hi)
            return np.maximum(lo, new_lo), np.minimum(hi, new_hi)

        # k-ary search, vectorised over K candidates per round: powers of two, then 64-way
        # splits of the bracket after the *largest* candidate that fits (robust where the fit
        # probability is not monotone, e.g. a term extrapolated below its data)
        lo = np.zeros(shape, dtype=np.int64)      # largest value known to fit (0: none)
        hi = np.full(shape, cap + 1, np.int64)    # smallest value known not to fit
        powers = 2 ** np.arange(int(np.log2(cap)) + 1, dtype=np.int64)
        lo, hi = refine(np.broadcast_to(powers, shape + powers.shape).astype(float), lo, hi)
        k = np.arange(1, _SEARCH_SPLIT + 1)
        while np.any(hi - lo > 1):
            cand = lo[..., None] + ((hi - lo)[..., None] * k) // (_SEARCH_SPLIT + 1)
            cand = np.clip(cand, lo[..., None] + 1, np.maximum(hi[..., None] - 1, lo[..., None] + 1))
            lo_new, hi_new = refine(cand.astype(float), lo, hi)
            done = hi - lo <= 1
            lo, hi = np.where(done, lo, lo_new.astype(np.int64)), np.where(done, hi, hi_new.astype(np.int64))
        return lo if lo.ndim else int(lo)

    def max_batch_size(self, model, *, gpu_memory_gib, confidence=0.95, gpu_memory_utilization=None, **workload):
        """Largest batch size (concurrent sequences) that fits with probability >= ``confidence``.

        Returns 0 when not even one sequence fits and :data:`MAX_BATCH_SEARCH` when the
        search limit still fits. ``batch + 1`` then fits with probability < ``confidence``.
        Other settings as :meth:`fit_probability`.
        """
        return self._max_search(model, "batch_size", gpu_memory_gib, confidence, gpu_memory_utilization,
                                workload, MAX_BATCH_SEARCH)

    def max_context_len(self, model, *, gpu_memory_gib, confidence=0.95, gpu_memory_utilization=None, **workload):
        """Longest context (tokens per sequence, input + output) that fits at ``confidence``
        with the given batch size. 0 when nothing fits; capped at :data:`MAX_CONTEXT_SEARCH`."""
        return self._max_search(model, "context", gpu_memory_gib, confidence, gpu_memory_utilization,
                                workload, MAX_CONTEXT_SEARCH)

    def kv_pool_tokens(self, model, *, gpu_memory_gib, gpu_memory_utilization=None, alpha=0.10, **workload):
        """vLLM's KV pool in tokens per engine for a ``gpu_memory_utilization``, with interval.

        ``pool = u G - non_kv`` GiB per GPU, divided by the per-GPU KV bytes per token and
        rounded down to whole blocks. The ``1 - alpha`` interval comes from the non-KV
        interval (its upper end gives the lower pool).

        Returns
        -------
        (tokens, lower, upper) : tuple of int (or arrays)
        """
        self._need_pool("kv_pool_tokens")
        _check_gpu(gpu_memory_gib)
        _check_alpha(alpha)
        u = self._utilization(gpu_memory_utilization)
        arch, entry, name, s, _ = self._workload(model, **_workload_kw(workload))
        c = self._core(arch, s)
        G = np.asarray(gpu_memory_gib, float)
        block = float(self.info.defaults.get("block_size", 1))

        def tokens(non_kv):
            pool_bytes = np.maximum(u * G - non_kv, 0.0) * _GIB
            t = np.floor(pool_bytes / (c["kvbpt"] * block)) * block
            return t.astype(np.int64) if np.ndim(t) else int(t)

        nk = c["non_kv"]
        return tokens(nk.median), tokens(nk.quantile(1 - alpha / 2)), tokens(nk.quantile(alpha / 2))

    def min_gpu_memory_utilization(self, model, *, gpu_memory_gib, confidence=0.95, **workload):
        """Smallest vLLM ``gpu_memory_utilization`` (to 0.001, rounded up) whose KV pool holds
        the workload with probability >= ``confidence``: the ``confidence`` quantile of
        ``non_kv + kv`` over ``G``. None (NaN in arrays) when more than the whole GPU is needed.
        """
        self._need_pool("min_gpu_memory_utilization")
        _check_gpu(gpu_memory_gib)
        _check_prob(confidence, "confidence")
        arch, entry, name, s, _ = self._workload(model, **_workload_kw(workload))
        need = self._core(arch, s)["needed"].quantile(confidence)
        u = np.ceil(need / np.asarray(gpu_memory_gib, float) * 1000.0 - 1e-9) / 1000.0
        u = np.where(u > 1.0, np.nan, u)
        if np.ndim(u) == 0:
            return None if math.isnan(float(u)) else float(u)
        return u

    def _need_pool(self, what):
        if self.framework != "vllm":
            raise ValueError(f"{what} is a vLLM question (gpu_memory_utilization); framework is {self.framework}")

    # ------------------------------------------------------------------ one answer (CLI)
    def query(self, model, *, gpu=None, gpu_memory_gib=None, gpu_memory_utilization=None, confidence=0.95,
              alpha=0.10, **workload) -> dict:
        """Everything ``python -m fitting.estimate`` reports, as one JSON-ready dict.

        Keys (GiB per GPU unless named): ``framework, model, params_version, weights_gib,
        activations_gib, overhead_gib, non_kv_gib, non_kv_lower_gib, non_kv_upper_gib,
        cuda_graph_gib, kv_cache_gib, kv_bytes_per_token`` (bytes per token per GPU),
        ``total_gib, total_lower_gib, total_upper_gib, total_all_gpus_gib, alpha, warnings``;
        with a GPU also ``gpu_memory_gib, fit_probability, max_batch_size, max_context_len``
        and for vLLM ``kv_pool_tokens, kv_pool_tokens_lower, kv_pool_tokens_upper``
        (tokens per engine) and ``min_gpu_memory_utilization``; plus ``settings``,
        ``defaults_applied``, ``units`` and the overhead/CUDA-graph interval bounds.
        """
        gpu_default_note = None
        if (self.framework == "vllm" and workload.get("batch_size") is None
                and (gpu is not None or gpu_memory_gib is not None)):
            # vLLM's own max_num_seqs default depends on the GPU (1024 on >= 70 GiB non-A100)
            from fitting.data.gpus import gpu_info

            g_name = gpu_info(gpu).name if gpu is not None else None
            g_mem = gpu_memory_gib if gpu_memory_gib is not None else gpu_info(gpu).usable_gib
            workload = dict(workload, batch_size=vllm_default_max_num_seqs(g_mem, g_name, "v1"))
            gpu_default_note = (f"{workload['batch_size']} (vLLM V1 max_num_seqs default on a "
                                f"{g_mem:g} GiB {g_name or 'GPU'})")
        pred = self.predict(model, alpha=alpha, **_workload_kw(workload))
        out = pred.to_dict()
        if gpu_default_note is not None:
            out["defaults_applied"]["batch_size"] = gpu_default_note
        out.pop("fit_probability")
        out["confidence"] = confidence
        warnings = list(out["warnings"])
        if gpu_memory_utilization is not None and self.framework != "vllm":
            warnings.append(f"gpu_memory_utilization applies to vLLM only; ignored for {self.framework}")
        if gpu is not None or gpu_memory_gib is not None:
            _check_prob(confidence, "confidence")
            if gpu_memory_gib is None:
                from fitting.data.gpus import gpu_info

                info = gpu_info(gpu)
                gpu_memory_gib = info.usable_gib
                out["gpu"] = info.name
                out["gpu_memory_source"] = info.usable_source
                if info.usable_is_estimate:
                    warnings.append(f"usable memory of {info.name} ({info.usable_gib} GiB) is an estimate "
                                    "(no log seen); give --gpu-memory-gib to override")
            else:
                out["gpu"] = gpu
                out["gpu_memory_source"] = "given"
            _check_gpu(gpu_memory_gib)
            out["gpu_memory_gib"] = float(gpu_memory_gib)
            u = self._utilization(gpu_memory_utilization)
            q = dict(_workload_kw(workload))
            q.update(_settings_back(pred.settings))
            if self.framework == "vllm":
                out["gpu_memory_utilization"] = float(u)
                if gpu_memory_utilization is None:
                    out["defaults_applied"]["gpu_memory_utilization"] = f"{u} (vLLM default)"
            out["fit_probability"] = self.fit_probability(model, gpu_memory_gib=gpu_memory_gib,
                                                          gpu_memory_utilization=u, **q)
            out["max_batch_size"] = self.max_batch_size(model, gpu_memory_gib=gpu_memory_gib, confidence=confidence,
                                                        gpu_memory_utilization=u, **q)
            out["max_context_len"] = self.max_context_len(model, gpu_memory_gib=gpu_memory_gib,
                                                          confidence=confidence, gpu_memory_utilization=u, **q)
            if out["max_batch_size"] >= MAX_BATCH_SEARCH:
                warnings.append(f"max_batch_size reached the search limit {MAX_BATCH_SEARCH}")
            mpe = _resolve_model(model)[0].max_position_embeddings
            if mpe and out["max_context_len"] > mpe:
                warnings.append(f"memory allows {out['max_context_len']} tokens per sequence, more than the model's "
                                f"max_position_embeddings {mpe}")
            if self.framework == "vllm":
                t, tl, tu = self.kv_pool_tokens(model, gpu_memory_gib=gpu_memory_gib, gpu_memory_utilization=u,
                                                alpha=alpha, **q)
                out["kv_pool_tokens"], out["kv_pool_tokens_lower"], out["kv_pool_tokens_upper"] = t, tl, tu
                umin = self.min_gpu_memory_utilization(model, gpu_memory_gib=gpu_memory_gib,
                                                       confidence=confidence, **q)
                out["min_gpu_memory_utilization"] = umin
                if umin is None:
                    warnings.append(f"the workload does not fit in the whole GPU at confidence {confidence}")
                elif pred.cuda_graph_upper_gib is not None and umin * gpu_memory_gib + pred.cuda_graph_upper_gib \
                        > gpu_memory_gib:
                    warnings.append("at min_gpu_memory_utilization the CUDA graphs may not fit in the rest of the GPU")
        out["warnings"] = warnings
        out["units"] = {"*_gib": "GiB (2**30 bytes) per GPU", "total_all_gpus_*": "GiB summed over tp x pp GPUs",
                        "kv_bytes_per_token": "bytes per token per GPU",
                        "kv_pool_tokens*": "tokens per engine (vLLM 'GPU KV cache size')",
                        "fit_probability": "probability", "max_context_len": "tokens per sequence"}
        return out


# ------------------------------------------------------------------------ module helpers
@lru_cache(maxsize=256)
def _resolve_cached(model: str):
    from fitting.data.registry import resolve_model

    entry = resolve_model(model)
    return entry.architecture, entry, str(getattr(entry, "id", model))


def _resolve_model(model):
    """model (id, alias, config.json path, ModelEntry, Architecture) -> (arch, entry, name)."""
    if model is None:
        raise ValueError("no model given: pass a registry id, an alias or a config.json path")
    if hasattr(model, "num_attention_heads") and hasattr(model, "num_layers"):  # an Architecture
        return model, None, f"<{model.model_type} architecture>"
    if hasattr(model, "architecture"):
        return model.architecture, model, str(getattr(model, "id", "<model>"))
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    return _resolve_cached(str(model))


@lru_cache(maxsize=256)
def _params_b_cached(arch):
    from fitting.physics.parameters import count_parameters

    return count_parameters(arch).total / 1e9


def _params_b(arch, entry):
    total = getattr(entry, "params_total", None) if entry is not None else None
    if total is not None:
        return float(total) / 1e9
    try:
        return _params_b_cached(arch)
    except TypeError:  # unhashable architecture
        from fitting.physics.parameters import count_parameters

        return count_parameters(arch).total / 1e9


_NUMERIC_KEYS = ("tp", "pp", "batch_size", "input_len", "output_len", "max_model_len", "max_num_batched_tokens")
_WORKLOAD_KEYS = ("tp", "pp", "batch_size", "input_len", "output_len", "max_model_len",
                  "max_num_batched_tokens", "dtype", "quantization", "kv_cache_dtype")


def _workload_kw(workload):
    unknown = set(workload) - set(_WORKLOAD_KEYS)
    if unknown:
        raise TypeError(f"unknown setting(s) {sorted(unknown)}; expected {_WORKLOAD_KEYS}")
    out = {k: None for k in _WORKLOAD_KEYS}
    out.update(tp=1, pp=1)
    out.update(workload)
    return out


def _settings_back(settings):
    """Settings of a Prediction (defaults applied) -> workload keywords."""
    return {k: settings[k] for k in _WORKLOAD_KEYS if k in settings}


def _plain(s):
    out = {}
    for k, v in s.items():
        if isinstance(v, np.ndarray) and v.ndim == 0:
            v = v.item()
        if isinstance(v, (np.integer, np.floating)):
            v = v.item()
        if isinstance(v, float) and v.is_integer() and k not in ("dtype",):
            v = int(v)
        out[k] = v
    return out


def _is_frame(obj):
    return type(obj).__module__.startswith("pandas") and hasattr(obj, "columns")


def _show(v):
    a = np.asarray(v)
    if a.ndim == 0:
        x = a.item()
        return _g(x) if isinstance(x, float) else repr(x)
    return f"array of {a.size} values (min {_g(float(np.min(a)))}, max {_g(float(np.max(a)))})"


def _g(x):
    return f"{x:g}" if isinstance(x, float) else str(x)


def _check_alpha(alpha):
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")


def _check_prob(p, name):
    if not 0.0 < float(p) < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {p}")


def _check_gpu(g):
    g = np.asarray(g, dtype=float)
    if np.any(~np.isfinite(g)) or np.any(g <= 0):
        raise ValueError(f"GPU memory must be a positive number of GiB, got {_show(g)}")

