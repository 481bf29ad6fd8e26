r"""Profiles DataFrame -> the fitting table of one framework (observed response + features).

:func:`build_observations` turns the rows of :meth:`fitting.data.profiles.ProfileSet.to_frame`
that belong to one framework into an :class:`Observations`: the observed response ``y``
(GiB per GPU), the overhead-model features of :func:`fitting.overhead.specs.build_features`
(one call per architecture group, vectorised over its rows) and, for every profile that
is left out, the reason.

The observed response (GiB per GPU)
-----------------------------------
*Missing components are missing, not zero*: a profile lacking one of the components of a
form is excluded with ``missing component`` unless another form applies. Forms are tried
in the order listed; the form used is kept in the ``response_form`` column.

========================= ======================== ==========================================
framework                 form                     y
========================= ======================== ==========================================
vllm (pool)               ``split``                weights + non_torch + activation_peak
                          ``peak_torch`` (v0.6.4)  peak_torch + non_torch (peak_torch
                                                   includes the weights)
sglang, tgi (pool)        ``non_kv_total``         non_kv_total
                          ``split``                weights + non_torch + activation_peak
trtllm (pool)             ``non_kv_total``         non_kv_total
                          ``engine``               weights + compute_buffer (execution
                                                   context) [+ other, where reported]
transformers (growing)    ``peak_allocated``       peak_allocated (torch max_memory_allocated)
pytorch (growing)         ``peak_allocated``       peak_allocated
                          ``peak_reserved``        peak_reserved (torch max_memory_reserved)
llamacpp (growing)        ``buffers``              weights + kv_cache + compute_buffer
                          ``peak_total``           peak_total
========================= ======================== ==========================================

transformers is fitted on one measure only, ``max_memory_allocated``: NVML / nvidia-smi
readings (``peak_total``) add the CUDA context and the caching allocator's reserve, and in
the public generate sweeps they are non-monotone in batch size and saturate near the
device limit (fragmentation, not a growth law), so mixing them in would blur the fit;
profiles with only such a reading are excluded (``missing component``).

For vLLM CUDA-graph memory is *not* part of ``y``: it is a separate response
(``cuda_graph_gib``, kept in the ``cuda_graph_gib`` column where reported and > 0) fitted
by its own small term (:data:`fitting.overhead.specs.CUDA_GRAPH`). From 0.20 vLLM subtracts
its own *estimate* of the graphs from the KV budget, before capturing them: where the log
states it (``engine_settings.cuda_graph_estimate_gib``, from the "equivalent to
--gpu-memory-utilization" or "(estimated)" lines) the estimate is the graph response and is
what the pool difference ``u G - KV`` loses; elsewhere the captured size stands in for it.

A profile measured as a sum over GPUs (``measured_scope == "sum_over_gpus"``) is divided by
its GPU count (``gpu_count``, else ``tp * pp``) so that every response is per GPU.

Choices made where a profile is silent (each marked in a boolean column)
--------------------------------------------------------------------------
``batch_defaulted``
    The batch size ``b`` (concurrent sequences) is, for vLLM, ``max_num_seqs`` (the server's
    capacity, which sizes the sampler and CUDA-graph buffers the start-up profiling run
    allocates), else vLLM's own default for that engine, version and GPU
    (:func:`fitting.data.frameworks.vllm_defaults`: 1024 on >= 70 GiB non-A100 GPUs
    in V1 >= 0.9, else 256; a benchmark's ``batch_size``/concurrency is *not*
    used: the non-KV footprint is fixed at start-up). Other pool frameworks:
    ``max_num_seqs``, else their default in :mod:`fitting.data.frameworks`, else 1. Growing
    frameworks: the workload ``batch_size``, else 1 (a single ``generate`` call / one
    llama.cpp slot).
``tp``, ``pp``
    1 where not stated.
``mnbt_defaulted``
    ``max_num_batched_tokens`` not stated: the framework default of
    :mod:`fitting.data.frameworks` (vLLM V1: 8192).
``dtype_defaulted``
    ``dtype`` not stated: :func:`fitting.data.frameworks.default_dtype` (the checkpoint's
    ``torch_dtype``; serving engines run float32 checkpoints as float16; else bfloat16).
``weights_measured``
    The offset of the response uses the *measured* per-GPU weights where the profile has
    them (so errors of weight physics do not leak into the overhead coefficients), the
    physics weights otherwise; ``weights_total_gib`` is then ``measured x n_gpus``.

Workload KV (growing frameworks only; pool frameworks have ``kv_gib = 0``):
transformers/pytorch hold ``b x (input_len + output_len)`` tokens, taken from
``context_len`` per sequence when the lengths are not stated (profiles with neither are
excluded: ``missing workload``). llama.cpp allocates its KV buffer for ``context_len``
(``n_ctx``) tokens in total, shared by its slots, so it is modelled as one sequence of
``context_len`` tokens.

Exclusions (each with a reason in :attr:`Observations.excluded`)
-----------------------------------------------------------------
``not use_in_fit: <exclude_reason>``, ``model unnamed``, ``unknown model: <id>``,
``missing component: <names>``, ``missing workload: ...``, ``no weights on the GPU``,
``partial CPU offload``
(llama.cpp with fewer layers offloaded than the model has, or, where every layer is offloaded,
at least as much weight memory on the host as on the GPU (``--n-cpu-moe``), or, without a
layer count, more than 10 % of the weights on the host: the KV/compute placement is not
modelled; the input embedding table alone stays on the host in a full offload), ``physics failed: <error>``, ``non-positive response``.

Size classes
------------
Dense models by total parameters (billions): ``<1B`` [0, 0.9), ``1-2B`` [0.9, 3),
``3-6B`` [3, 6), ``7-8B`` [6, 10), ``13-30B`` [10, 35), ``40-70B`` [35, 100), ``>100B``
[100, inf); every MoE model is ``MoE``. The seed plan's accuracy targets (MAPE) exist for
``1-2B`` < 10 %, ``7-8B`` < 5 %, ``13-30B`` < 8 %, ``40-70B`` < 10 %, ``MoE`` < 15 %.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import re
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from fitting.data.frameworks import (
    default_dtype,
    framework_info,
    vllm_defaults,
)
from fitting.data.registry import UnknownModelError, resolve_model
from fitting.data.gpus import find_gpu, gpu_interconnect
from fitting.data.transformers_settings import transformers_settings_from_profile
from fitting.data.vllm_releases import vllm_release_at
from fitting.data.vllm_settings import vllm_settings_from_record
from fitting.overhead.measurement import (
    ALLOCATED_PLUS_NON_TORCH,
    CACHE_NOT_EMPTIED,
    NVML_USED_AFTER_CALL,
    RESERVED_SLACK,
    estimate_non_torch,
    estimate_prefill_slack,
)
from fitting.overhead.specs import FEATURE_NAMES, TRANSFORMERS_DEFAULTS, build_features, response_offset_gib
from fitting.physics.quantization import WeightFormat, dtype_bytes, normalize_dtype, weight_format
from fitting.physics.transformers import load_transient_bytes
from fitting.physics.memory import kv_bytes_per_token
from fitting.physics.parameters import count_parameters
from fitting.physics.vllm import (activation_peak_parts, cold_compile_in_profile_window, graphs_in_pool_budget,
                                  max_num_batched_tokens_from_encoder_budget,
                                  printed_activation_includes_graph_estimate, printed_activation_physics_bytes)
from fitting.physics import tgi as tgi_physics

__all__ = [
    "Observations",
    "build_observations",
    "size_class",
    "SIZE_CLASS_TARGETS_MAPE",
    "SIZE_CLASS_ORDER",
    "RESPONSE_FORMS",
]

_GIB = float(2**30)
#: Relative resolution of the exact part (weights + workload KV) of a response: the weight count
#: leaves out non-parameter buffers (rotary caches, masks) and allocator rounding, some 0.1-0.3% of
#: the weights; a measured uncertain part below this fraction is not fitted (see build_observations).
UNCERTAIN_PART_RESOLUTION = 0.0025

#: A cold-compile vLLM start whose printed activation peak exceeds the profile-run physics by
#: more than this fraction of the printed figure (and :data:`COLD_COMPILE_VISIBLE_MIN_GIB`)
#: shows the compiler's temporaries in its non-KV figure (the activation check's 15 %).
COLD_COMPILE_VISIBLE_FRACTION = 0.15
COLD_COMPILE_VISIBLE_MIN_GIB = 0.05

#: The seed plan's accuracy targets: mean absolute percentage error (fraction) by class.
SIZE_CLASS_TARGETS_MAPE = {"1-2B": 0.10, "7-8B": 0.05, "13-30B": 0.08, "40-70B": 0.10, "MoE": 0.15}

#: Dense size classes: (lower, upper) total parameters in billions, [lower, upper).
_DENSE_CLASSES = (
    ("<1B", 0.0, 0.9), ("1-2B", 0.9, 3.0), ("3-6B", 3.0, 6.0), ("7-8B", 6.0, 10.0),
    ("13-30B", 10.0, 35.0), ("40-70B", 35.0, 100.0), (">100B", 100.0, math.inf),
)
SIZE_CLASS_ORDER = tuple(c[0] for c in _DENSE_CLASSES) + ("MoE",)

#: Response forms per framework: (form name, measured components summed), tried in order.
RESPONSE_FORMS = {
    "vllm": (("split", ("weights", "non_torch", "activation_peak")),
             ("peak_torch", ("peak_torch", "non_torch"))),  # then "pool_difference": u x G - KV (_response)
    "sglang": (("non_kv_total", ("non_kv_total",)),
               ("split", ("weights", "non_torch", "activation_peak"))),
    "tgi": (("non_kv_total", ("non_kv_total",)),
            ("split", ("weights", "non_torch", "activation_peak"))),
    "trtllm": (("non_kv_total", ("non_kv_total",)),
               ("engine", ("weights", "compute_buffer"))),
    "transformers": (("peak_allocated", ("peak_allocated",)),),
    "pytorch": (("peak_allocated", ("peak_allocated",)), ("peak_reserved", ("peak_reserved",))),
    "llamacpp": (("buffers", ("weights", "kv_cache", "compute_buffer")),
                 ("peak_total", ("peak_total",))),
}
#: Components added when present (never required).
_OPTIONAL_COMPONENTS = {("trtllm", "engine"): ("other",)}

#: SGLang: device memory in use before the weight load (GPU total minus "Load weight begin. avail
#: mem") above which a start counts as sharing its GPU with another process. The CUDA context,
#: NCCL communicators and custom all-reduce buffers come to 0.3-1.5 GiB in the logs.
SGLANG_MAX_PRELOAD_GIB = 3.0

#: llama.cpp: share of the weights on the CPU above which a run counts as partially offloaded.
_MAX_CPU_WEIGHT_SHARE = 0.10

_TABLE_COLUMNS = (
    "profile_id", "model_id", "model_key", "arch_key", "params_b", "is_moe", "size_class", "y_gib",
    "response_form", "weights_measured", "batch_defaulted", "mnbt_defaulted", "dtype_defaulted",
    "tp", "pp", "series", "input_len", "output_len", "cuda_graph_gib",
)


#: Architecture fields that do not change memory, left out of the fold key.
_NOT_IN_ARCH_KEY = ("torch_dtype", "extra")


def architecture_key(arch) -> str:
    """The fold key of an architecture: a short hash of every memory-relevant
    :class:`fitting.physics.Architecture` field (all but ``torch_dtype`` and ``extra``,
    which holds e.g. ``max_position_embeddings`` and RoPE scaling). Identical keys =
    identical architectures (Meta-Llama-3-8B and Llama-3.1-8B, huggyllama/llama-7b and
    Llama-2-7b-hf), which are held out together and share one random intercept."""
    values = tuple((f.name, getattr(arch, f.name)) for f in dataclasses.fields(arch) if f.name not in _NOT_IN_ARCH_KEY)
    digest = hashlib.sha256(repr(values).encode()).hexdigest()[:10]
    return f"{arch.model_type}-{arch.num_layers}L-{arch.hidden_size}h-{digest}"


def size_class(params_b, is_moe):
    """Size class label of a model (see the module docstring for the edges).

    Parameters
    ----------
    params_b : float
        Total parameters in billions.
    is_moe : bool

    Returns
    -------
    str
    """
    if is_moe:
        return "MoE"
    for name, lo, hi in _DENSE_CLASSES:
        if lo <= params_b < hi:
            return name
    return "unknown"


@dataclass
class Observations:
    """The fitting table of one framework.

    Attributes
    ----------
    framework : str
    kv_cache_mode : {"pool", "growing"}
    observed_quantity : dict
        ``{"name": ..., "description": ...}`` of the response, plus ``measurement_models``
        (:mod:`fitting.overhead.measurement`) where a profile entered through one.
    table : pandas.DataFrame
        One row per used profile: ``profile_id, model_id`` (registry id), ``model_key``
        (group label for cross-validation: the registry's base model, so that fine-tunes
        registered as aliases of it count as the same model), ``params_b`` (billions), ``is_moe``,
        ``size_class``, ``y_gib`` (observed response, GiB per GPU), ``response_form``, the
        ``*_defaulted`` / ``weights_measured`` flags, ``tp, pp, series``,
        ``cuda_graph_gib`` (vLLM, NaN where not reported) and the feature columns.
    features : dict of ndarray
        :data:`fitting.overhead.specs.FEATURE_NAMES` aligned with ``table`` rows (GiB per GPU).
    excluded : list of dict
        ``{"profile_id": ..., "reason": ...}`` for every profile not used.
    n_total : int
        Profiles of this framework in the input (used + excluded).
    """

    framework: str
    kv_cache_mode: str
    observed_quantity: dict
    table: pd.DataFrame
    features: dict
    excluded: list = field(default_factory=list)
    n_total: int = 0

    @property
    def y(self) -> np.ndarray:
        """Observed response, GiB per GPU."""
        return self.table["y_gib"].to_numpy(dtype=float)

    @property
    def groups(self) -> np.ndarray:
        """Architecture label per row: the fold key of cross-validation and the group of the
        random intercept (see :func:`architecture_key`); the model label for a table built
        without architecture keys."""
        col = "arch_key" if "arch_key" in self.table.columns else "model_key"
        return self.table[col].to_numpy()

    @property
    def models(self) -> np.ndarray:
        """Model label per row (the registry's base model)."""
        return self.table["model_key"].to_numpy()

    @property
    def n_used(self) -> int:
        return len(self.table)

    @property
    def offset_gib(self) -> np.ndarray:
        """Exact-physics part of the response (weights + KV + activations), GiB per GPU."""
        return response_offset_gib(self.features)

    def subset(self, mask) -> Observations:
        """Rows where ``mask`` is True (a boolean array or index array); same metadata."""
        idx = np.flatnonzero(mask) if np.asarray(mask).dtype == bool else np.asarray(mask)
        return replace(self, table=self.table.iloc[idx].reset_index(drop=True),
                       features={k: v[idx] for k, v in self.features.items()})


# ------------------------------------------------------------------------------ helpers
def _missing(v) -> bool:
    return v is None or (not isinstance(v, (tuple, list, dict)) and bool(pd.isna(v)))


def _num(frame, col):
    """Column as float ndarray (NaN where absent or not numeric)."""
    if col not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[col], errors="coerce").astype("float64").to_numpy()


def _str(frame, col):
    """Column as object ndarray of str or None."""
    if col not in frame.columns:
        return np.array([None] * len(frame), dtype=object)
    return np.array([None if _missing(v) else str(v) for v in frame[col].tolist()], dtype=object)


def _bool(frame, col, default):
    if col not in frame.columns:
        return np.full(len(frame), default, dtype=bool)
    return np.array([default if _missing(v) else bool(v) for v in frame[col].tolist()], dtype=bool)


def _response(frame, framework, kv_from_tokens=None):
    """(y_gib, weights_gib, form, missing) per row from the measured components.

    ``kv_from_tokens`` (vLLM): the pool in GiB per GPU from the printed pool size in tokens
    (or blocks x block size) and the exact KV bytes per token, for rows that print no GiB
    figure of the pool (:func:`_kv_from_tokens`)."""
    n = len(frame)
    y = np.full(n, np.nan)
    form = np.array([None] * n, dtype=object)
    lacking: list[list[str]] = [[] for _ in range(n)]
    for name, comps in RESPONSE_FORMS[framework]:
        vals = np.column_stack([_num(frame, f"{c}_gib") for c in comps])
        ok = np.all(np.isfinite(vals), axis=1) & np.isnan(y)
        total = vals.sum(axis=1)
        for extra in _OPTIONAL_COMPONENTS.get((framework, name), ()):
            e = _num(frame, f"{extra}_gib")
            total = total + np.where(np.isfinite(e), e, 0.0)
        y = np.where(ok, total, y)
        form = np.where(ok, name, form)
        for i in np.flatnonzero(~np.all(np.isfinite(vals), axis=1)):
            gone = [c for c, v in zip(comps, vals[i]) if not np.isfinite(v)]
            lacking[i].append(f"{' + '.join(comps)} lacks {', '.join(gone)}")
    if framework == "vllm":
        # the pool identity: vLLM sizes its KV pool as u x G minus the non-KV footprint (from
        # 0.6.5: weights + torch peak increase + non-torch increase; from 0.20 the CUDA-graph
        # estimate is subtracted as well), so where the log gives the total GPU memory, the
        # utilization and the pool, non-KV = u G - KV (vllm/v1/worker/gpu_worker.py,
        # determine_available_memory). Printed to 0.01 GiB: an error of about 0.01 GiB.
        u = _num(frame, "gpu_memory_utilization")
        G, G_from_table = _gpu_totals(frame)
        kv = _num(frame, "kv_cache_gib")
        from_tokens = np.zeros(n, dtype=bool)
        if kv_from_tokens is not None:
            from_tokens = ~np.isfinite(kv) & np.isfinite(kv_from_tokens)
            kv = np.where(from_tokens, kv_from_tokens, kv)
        # what 0.20+ subtracts is its own estimate of the graphs (printed, or implied by the
        # "equivalent to --gpu-memory-utilization" line: cuda_graph_estimate_gib); where a log
        # gives only the captured size, that stands in for it
        cg_est = _num(frame, "cuda_graph_estimate_gib")
        cg = np.where(np.isfinite(cg_est), cg_est, _num(frame, "cuda_graph_gib"))
        ver = _str(frame, "framework_version")
        cg_counted = np.array([graphs_in_pool_budget(v) for v in ver])
        diff = u * G - kv - np.where(cg_counted, cg, 0.0)
        ok = np.isnan(y) & np.isfinite(diff) & (diff > 0)
        y = np.where(ok, diff, y)
        name = np.where(G_from_table, "pool_difference_gpu_table", "pool_difference")
        name = np.where(from_tokens, np.char.add(name.astype(str), "_tokens"), name)
        form = np.where(ok, name, form)
        for i in np.flatnonzero(np.isnan(y)):
            gone = [n for n, v in (("gpu_memory_utilization", u[i]), ("gpu_memory_gib", G[i]),
                                   ("kv_cache_gib", kv[i])) if not np.isfinite(v)]
            if cg_counted[i] and not np.isfinite(cg[i]):
                gone.append("cuda_graph_gib (0.20+ subtracts it before sizing the pool)")
            lacking[i].append(f"u x G - KV lacks {', '.join(gone) or 'a positive difference'}")
    if framework == "sglang":
        # SGLang's pool identity (sglang/srt/model_executor/model_runner.py, profile_max_num_token,
        # the same from 0.3 to 0.5): rest = free_now - T (1 - mem_fraction_static), T the free
        # memory after CUDA and distributed init, free_now the free memory after the weights and
        # everything else loaded before the pool; tokens = rest / cell_size. With G the device
        # total, the static budget holds mfs x G = pool + [what loading used + mfs x (G - T)]: the
        # bracket is the response (non-KV of the static budget), y = mfs x G - pool. Activations
        # and CUDA graphs live in the rest, (1 - mfs) T, and are not part of y.
        u = _num(frame, "mem_fraction_static")
        G, G_from_table = _gpu_totals(frame)
        kv = _num(frame, "kv_cache_gib")
        from_tokens = np.zeros(n, dtype=bool)
        if kv_from_tokens is not None:
            from_tokens = np.isfinite(kv_from_tokens)
            kv = np.where(from_tokens, kv_from_tokens, kv)
        state = _num(frame, "other_gib")  # Mamba / recurrent state: sized from the same rest
        kv = kv + np.where(np.isfinite(state), state, 0.0)
        cap = _num(frame, "max_total_tokens")
        tokens = _num(frame, "kv_cache_tokens")
        free0 = _num(frame, "free_before_load_gib")
        diff = u * G - kv
        ok = np.isnan(y) & np.isfinite(diff) & (diff > 0)
        for i in np.flatnonzero(ok):
            if np.isfinite(cap[i]) and (not np.isfinite(tokens[i]) or tokens[i] >= cap[i]):
                ok[i] = False
                lacking[i].append(f"the pool is capped by max_total_tokens={int(cap[i])}, not sized by "
                                  "mem_fraction_static")
            elif np.isfinite(free0[i]) and G[i] - free0[i] > SGLANG_MAX_PRELOAD_GIB:
                ok[i] = False
                lacking[i].append(f"free memory before the weight load {free0[i]:.2f} GiB of {G[i]:.2f} GiB: "
                                  f"more than {SGLANG_MAX_PRELOAD_GIB:g} GiB in use before loading (another "
                                  "process on the GPU)")
        y = np.where(ok, diff, y)
        name = np.where(G_from_table, "static_budget_gpu_table", "static_budget")
        name = np.where(from_tokens, np.char.add(name.astype(str), "_tokens"), name)
        form = np.where(ok, name, form)
        for i in np.flatnonzero(np.isnan(y)):
            gone = [n for n, v in (("mem_fraction_static", u[i]), ("gpu_memory_gib", G[i]),
                                   ("kv_cache_gib", kv[i])) if not np.isfinite(v)]
            if gone:
                lacking[i].append(f"mfs x G - KV lacks {', '.join(gone)}")
    if framework == "tgi":
        # TGI's pool identity (fitting.physics.tgi): the pool is sized after the warm-up prefill
        # from the memory then free, so what the warm-up left in use besides the KV cache is
        # x w G - pool (3.x) or x G - (pool - nb) / w - nb (2.x, nb the warm-up batch's own
        # blocks), x = cuda_memory_fraction; whole blocks: up to one block (1/w) of rounding
        x = _num(frame, "cuda_memory_fraction")
        x = np.where(np.isfinite(x), x, 1.0)  # the launcher's default
        G, G_from_table = _gpu_totals(frame)
        kv = np.full(n, np.nan) if kv_from_tokens is None else np.asarray(kv_from_tokens, float)
        tokens = _num(frame, "kv_cache_tokens")
        ver = _str(frame, "framework_version")
        total = _num(frame, "max_model_len")  # the parser's max_total_tokens
        prefill = _num(frame, "max_num_batched_tokens")
        diff = np.full(n, np.nan)
        for i in range(n):
            if not ver[i] or not (np.isfinite(G[i]) and np.isfinite(kv[i]) and tokens[i] > 0):
                continue
            nb_tokens = tgi_physics.warmup_batch_tokens(
                ver[i], max_total_tokens=int(total[i]) if np.isfinite(total[i]) else None,
                max_batch_prefill_tokens=int(prefill[i]) if np.isfinite(prefill[i]) else None)
            nb_gib = nb_tokens * kv[i] / tokens[i]
            diff[i] = tgi_physics.non_kv_from_pool(kv[i], G[i], fraction=x[i], version=ver[i], batch_kv_bytes=nb_gib)
        ok = np.isnan(y) & np.isfinite(diff) & (diff > 0)
        y = np.where(ok, diff, y)
        name = np.where(G_from_table, "pool_identity_gpu_table_tokens", "pool_identity_tokens")
        form = np.where(ok, name, form)
        for i in np.flatnonzero(np.isnan(y)):
            gone = [nm for nm, v in (("gpu_memory_gib", G[i]), ("kv_cache_tokens x KV bytes per token", kv[i]))
                    if not np.isfinite(v)]
            if not ver[i]:
                gone.append("framework_version (the pool rule and the warm-up differ by release)")
            lacking[i].append(f"the warm-up pool identity lacks {', '.join(gone) or 'a positive difference'}")
    missing = np.array(["; ".join(m) for m in lacking], dtype=object)
    return y, _num(frame, "weights_gib"), form, missing


def _gpu_totals(frame):
    """(G, from_table) per row: the device total in GiB the profile states, else the total a
    log of the same GPU model printed (:mod:`fitting.data.gpus`; estimates are not used)."""
    G = np.array(_num(frame, "gpu_memory_gib"), dtype=float)
    from_table = np.zeros(len(frame), dtype=bool)
    for i, name in enumerate(_str(frame, "gpu_name")):
        if not np.isfinite(G[i]) and name:
            info = find_gpu(name)
            if info is not None and not info.usable_is_estimate:
                G[i], from_table[i] = info.usable_gib, True
    return G, from_table


def _resolve_models(model_ids):
    """{model_id: (entry, error)} for every distinct id (registry looked up once per id)."""

    out = {}
    for mid in sorted({m for m in model_ids if m is not None}):
        try:
            out[mid] = (resolve_model(mid), None)
        except UnknownModelError:
            out[mid] = (None, f"unknown model: {mid}")
        except LookupError:  # in the registry without verified dimensions
            out[mid] = (None, f"model dimensions not verified in the registry: {mid}")
        except (ValueError, OSError) as exc:  # malformed config path etc.
            out[mid] = (None, f"unknown model: {mid} ({exc})")
    return out


def _params_b(entry):
    total = getattr(entry, "params_total", None)
    if total is None or not np.isfinite(float(total)):

        total = count_parameters(entry.architecture).total
    return float(total) / 1e9


_STATES_GROUP = re.compile(r"(?:\bg-?\d+\b|group)", re.IGNORECASE)


def _checkpoint_format(quantization, entry):
    """The profile's quantization refined by the registry's format of the checkpoint.

    A source that names only the method and bits ("GPTQ 4-bit, exllamav1 kernel") ran the
    checkpoint's own group size; where the registry records it (``native_quantization``, e.g.
    ``gptq-int4-g-1``) and it is the same method and bits, that exact format sizes the weights.
    A profile that states a group size keeps its own."""
    native = getattr(entry, "native_quantization", None)
    if not quantization or not native or _STATES_GROUP.search(str(quantization)):
        return quantization
    try:
        prof, nat = weight_format(quantization), weight_format(native)
    except ValueError:
        return quantization
    if not (isinstance(prof, WeightFormat) and isinstance(nat, WeightFormat)):
        return quantization
    same = prof.name.split("-")[0] == nat.name.split("-")[0] and prof.bits == nat.bits
    return native if same else quantization


def _features_for_group(arch, quantization, weights_all_measured, kw):
    """build_features; a quantization format unknown to physics is harmless when every
    row's weights were measured (the offset uses them), so retry without it then."""
    try:
        return build_features(arch, quantization=quantization, **kw)
    except (ValueError, KeyError):
        if quantization is None or not weights_all_measured:
            raise
        return build_features(arch, quantization=None, **kw)


def _positive_int_or(values, default):
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v) & (v >= 1)
    return np.where(ok, v, default), ~ok


# --------------------------------------------------------------------------- main entry
#: llama.cpp made flash attention 'auto' (on where the backend supports it, CUDA included)
#: the default with PR #15434 (https://github.com/ggml-org/llama.cpp/pull/15434, merged Aug 2025).
_LLAMACPP_FA_AUTO_FROM = "2025-09-01"
_FA_ON = re.compile(r"flash[_ ]?attn\w*\W{0,3}(?:forced on|on\b|=\s*1\b|=\s*true|enabled|auto)", re.IGNORECASE)
_FA_OFF = re.compile(r"flash[_ ]?attn\w*\W{0,3}(?:off\b|=\s*0\b|=\s*false|disabled)", re.IGNORECASE)


def _llamacpp_settings(frame) -> list[dict]:
    """Per row: llama.cpp's ``n_ubatch`` and ``flash_attn`` as the profile states them
    (engine settings, else its notes); an unstated flash attention is on for runs dated from
    September 2025 (``-fa auto`` default) and off before."""
    col = functools.partial(_column_list, frame)
    ub, fa, date = col("n_ubatch"), col("flash_attn"), col("provenance_date")
    notes = [" | ".join(str(x) for x in t if isinstance(x, str))
             for t in zip(col("provenance_notes"), col("measurement_notes"), col("provenance_evidence"))]
    out = []
    for i in range(len(frame)):
        flag = fa[i] if fa[i] is not None and not (isinstance(fa[i], float) and fa[i] != fa[i]) else None
        if flag is None:
            if _FA_OFF.search(notes[i]):
                flag = False
            elif _FA_ON.search(notes[i]):
                flag = True
            else:
                flag = bool(isinstance(date[i], str) and date[i] >= _LLAMACPP_FA_AUTO_FROM)
        n = ub[i] if isinstance(ub[i], (int, float)) and ub[i] == ub[i] else None
        out.append({"n_ubatch": int(n) if n else None, "flash_attn": flag})
    return out


def _column_list(frame, name) -> list:
    """A frame column as a list (Nones where the frame lacks it)."""
    return frame[name].tolist() if name in frame.columns else [None] * len(frame)


def _vllm_text_settings(frame) -> list[dict]:
    """Per row: the settings the profile's own text states
    (:func:`fitting.data.vllm_settings.vllm_settings_from_record` on its evidence and notes)."""
    col = functools.partial(_column_list, frame)
    ev, notes, mnotes, gpus = col("provenance_evidence"), col("provenance_notes"), col("measurement_notes"), \
        col("gpu_name")
    out = []
    for i in range(len(frame)):
        text = " | ".join(str(x) for x in (notes[i], mnotes[i]) if isinstance(x, str))
        out.append(vllm_settings_from_record({"evidence": ev[i] if isinstance(ev[i], str) else None, "notes": text,
                                              "gpu_name": gpus[i] if isinstance(gpus[i], str) else None}))
    return out


def _vllm_interconnect(frame, settings) -> np.ndarray:
    """Per row: ``"pcie"`` where the profile's text (``settings``, :func:`_vllm_text_settings`)
    says custom all-reduce was off, P2P was missing or the cards are PCIe, else the GPU's usual
    interconnect (:func:`fitting.data.gpus.gpu_interconnect`); ``nvlink`` or None otherwise."""
    gpus = _column_list(frame, "gpu_name")
    out = np.empty(len(frame), dtype=object)
    for i, st in enumerate(settings):
        if st["custom_all_reduce"] is False or st["p2p"] is False or st["interconnect"] == "pcie":
            out[i] = "pcie"
        else:
            out[i] = st["interconnect"] or gpu_interconnect(gpus[i] if isinstance(gpus[i], str) else None)
    return out


def _kv_from_tokens(frame, entries, framework="vllm") -> np.ndarray:
    """Per row: the KV pool in GiB per GPU from the pool size the engine printed in tokens (vLLM
    "GPU KV cache size: N tokens", else "# GPU blocks: B" x the block size, 16 unless stated;
    SGLang "KV Cache is allocated. #tokens: N", whose cell size is the same product; TGI "max
    batch total tokens", its blocks alike in every layer), times
    the exact KV bytes per token and GPU (:func:`fitting.physics.memory.kv_bytes_per_token`,
    which matches the pools vLLM prints to 0.02%). NaN where the model is unknown, its stack
    has sliding-window or KV-less layers (vLLM sizes those pools per layer group), the run is
    pipeline-parallel, or no count is printed. vLLM rounds the pool down to whole blocks: at most one block's bytes below the
    GiB figure it would print."""
    n = len(frame)
    out = np.full(n, np.nan)
    tokens = _num(frame, "kv_cache_tokens")
    blocks = _num(frame, "num_gpu_blocks")
    block = _num(frame, "block_size")
    if framework == "vllm":
        count = np.where(np.isfinite(tokens), tokens, blocks * np.where(np.isfinite(block), block, 16.0))
    else:
        count = tokens
    tp, _ = _positive_int_or(_num(frame, "tp"), 1.0)
    pp, _ = _positive_int_or(_num(frame, "pp"), 1.0)
    ids, dtypes, kvd = _str(frame, "model_id"), _str(frame, "dtype"), _str(frame, "kv_cache_dtype")
    for i in np.flatnonzero(np.isfinite(count)):
        entry = (entries.get(ids[i]) or (None, None))[0]
        arch = getattr(entry, "architecture", None)
        # TGI allocates every layer's blocks alike, sliding-window layers included
        # (flash_causal_lm.py init_kv_cache: num_layers x the same block shape)
        per_group = arch is not None and arch.num_sliding_layers and framework != "tgi"
        if arch is None or per_group or len(arch.kv_layers) != arch.num_layers or pp[i] > 1:
            continue  # per-group pools; a pipeline stage's block count (one V0 DeepSeek-V2.5 pp=2 log: 2x off)
        try:
            per_token = kv_bytes_per_token(arch, kv_cache_dtype=kvd[i] or "auto",
                                           dtype=dtypes[i] or default_dtype(arch, framework), tp=int(tp[i]), pp=int(pp[i]))
        except (ValueError, KeyError):
            continue
        out[i] = count[i] * float(per_token) / _GIB
    return out


def _vllm_versions(frame) -> np.ndarray:
    """Per row: the vLLM version the profile states, else the newest release published by the
    profile's date (:func:`fitting.data.vllm_releases.vllm_release_at`; the mechanisms and
    defaults of that release), else None. The accounting form of the response (``_response``)
    uses the stated version only."""
    stated = _str(frame, "framework_version")
    dates = _column_list(frame, "provenance_date")
    return np.array([v if v is not None else vllm_release_at(d) for v, d in zip(stated, dates)], dtype=object)


def _transformers_settings(frame) -> list[dict]:
    """Per row: the run's transformers settings (version, mode, attention, kernel) as the
    profile states them (:func:`fitting.data.transformers_settings.transformers_settings_from_profile`);
    a version neither stated nor inferable takes the newest verified one, recorded in
    ``version_source``."""
    cols = ("framework_version", "series", "attention_impl", "quantization", "measurement_notes",
            "provenance_notes", "phase", "flags")
    data = {c: _column_list(frame, c) for c in cols}
    out = []
    for i in range(len(frame)):
        s = transformers_settings_from_profile({c: data[c][i] for c in cols})
        if s["version"] is None:
            s["version"] = TRANSFORMERS_DEFAULTS["version"]
            s["version_source"] = "not stated: the newest verified assumed"
        out.append({k: s[k] for k in ("version", "version_source", "mode", "attn_implementation", "quantization",
                                      "peak_includes_load")})
    return out


def _apply_slack_model(y, form, slack_reserved, reserved, phase, weights, finite, reason, pid, quantity):
    """Allocated peaks of the ``reserved_slack`` rows (fitting.overhead.measurement): the slack
    is estimated from the rows that measured one prefill pass both ways, then inverted.
    Rows without an estimate are excluded (``reason`` is filled in place); ``quantity`` gains
    the slack model's record."""
    pending = (form == RESERVED_SLACK) & finite & np.array([r is None for r in reason])
    if not pending.any():
        return y
    pairs = (finite & np.array([r is None for r in reason]) & (form == "peak_allocated")
             & np.array([p == "prefill" for p in phase]) & np.isfinite(reserved))
    est = estimate_prefill_slack(y[pairs], reserved[pairs], weights[pairs], pid[pairs])
    if est is None:
        for i in np.flatnonzero(pending):
            reason[i] = ("missing component: a reserved/NVML figure of a prefill pass, and fewer than 5 paired "
                         "allocated/reserved prefill profiles estimate the allocator slack")
        return y
    y = y.copy()
    y[pending] = est.allocated_from_reserved(slack_reserved[pending], weights[pending])
    quantity["measurement_models"] = list(quantity.get("measurement_models") or []) + [est.to_json()]
    return y


def _exclude_visible_cold_compile(fr, entries, model_ids, reason, b, mnbt, tp, pp, version, runner, sampler_fi,
                                  dtype, quant):
    """Exclude the vLLM starts whose own log shows a cold torch.compile *and* an activation
    peak above the profile-run physics (:data:`COLD_COMPILE_VISIBLE_FRACTION`): the compiler's
    temporaries are then in their non-KV figure (:func:`fitting.physics.vllm.cold_compile_in_profile_window`,
    vllm#54122). Most cold starts show none (Llama-3.1-8B on 0.19 prints 1.89 GiB cold and
    warm) and stay; the fit is of a start without the excess, which the estimator states apart
    for a first start. From 0.27 the printed figure is the transient peak plus the CUDA-graph
    estimate, compared with the physics less what the run keeps."""
    cache, eager = _str(fr, "compile_cache"), _bool(fr, "enforce_eager", False)
    engine = _str(fr, "engine")
    printed = _num(fr, "activation_peak_gib")
    estimate = _num(fr, "cuda_graph_estimate_gib")
    for i in range(len(reason)):
        if reason[i] is not None or not np.isfinite(printed[i]) or not np.isfinite(mnbt[i]):
            continue
        if not cold_compile_in_profile_window(version[i], engine=engine[i], enforce_eager=bool(eager[i]),
                                              compile_cache=cache[i]):
            continue
        fig = printed[i]
        if printed_activation_includes_graph_estimate(version[i]):
            if not np.isfinite(estimate[i]):
                continue
            fig = printed[i] - estimate[i]
        arch = entries[model_ids[i]][0].architecture
        parts = activation_peak_parts(arch, max_num_seqs=int(b[i]), max_num_batched_tokens=int(mnbt[i]),
                                      version=version[i], engine=engine[i],
                                      dtype_bytes=_dtype_bytes_or_2(dtype[i]),
                                      tp=int(tp[i]), last_stage=bool(pp[i] <= 1), quantization=quant[i],
                                      flashinfer=sampler_fi[i], model_runner=runner[i])
        physics = printed_activation_physics_bytes(parts, version[i]) / _GIB
        excess = fig - physics
        if excess > max(COLD_COMPILE_VISIBLE_FRACTION * fig, COLD_COMPILE_VISIBLE_MIN_GIB):
            reason[i] = (f"cold torch.compile in vLLM's memory-profiling window (its log shows the graph compiled, not "
                         f"loaded): it printed {fig:.2f} GiB of activation peak against {physics:.2f} GiB of profile-run "
                         f"physics, the compiler's temporaries counted as activations (vllm#54122); the fit is of a "
                         "start without them")


#: Frame columns that make two vLLM starts the same command (the compile-cache state aside).
_SAME_COMMAND_COLUMNS = ("model_id", "framework_version", "engine", "gpu_name", "gpu_memory_gib", "tp", "pp",
                         "max_model_len", "max_num_seqs", "max_num_batched_tokens", "dtype", "quantization",
                         "kv_cache_dtype", "gpu_memory_utilization", "enforce_eager", "language_model_only",
                         "model_runner", "attention_impl")


def _exclude_cold_with_warm_twin(fr, reason, y) -> None:
    """Exclude a cold-compile vLLM start whose warm twin (the same command, its compile cache
    warm) has a non-KV figure smaller by more than :data:`COLD_COMPILE_VISIBLE_MIN_GIB`: the
    difference is the compiler's temporaries counted as activations (vllm#54122). This finds
    the excess where the log prints no activation peak (gemma-2-9b-it on 0.20.1: 13.87 GiB of
    KV cold, 14.85 GiB warm); :func:`_exclude_visible_cold_compile` needs the printed peak."""
    cache = _str(fr, "compile_cache")
    if not np.any(cache == "cold") or not np.any(cache == "warm"):
        return
    cols = [[None if _missing(v) else str(v) for v in fr[c].tolist()] if c in fr.columns else [None] * len(fr)
            for c in _SAME_COMMAND_COLUMNS]
    command = list(zip(*cols))
    warm_y: dict = {}
    for j in np.flatnonzero((cache == "warm") & np.isfinite(y)):
        warm_y.setdefault(command[j], []).append(float(y[j]))
    for i in np.flatnonzero((cache == "cold") & np.isfinite(y)):
        twins = warm_y.get(command[i])
        if reason[i] is not None or not twins:
            continue
        excess = float(y[i]) - min(twins)
        if excess > COLD_COMPILE_VISIBLE_MIN_GIB:
            reason[i] = (f"cold torch.compile in vLLM's memory-profiling window (its log shows the graph compiled, not "
                         f"loaded): its non-KV figure is {excess:.2f} GiB above its warm twin's (the same command "
                         "with the compile cache warm), the compiler's temporaries counted as activations "
                         "(vllm#54122); the fit is of a start without them")


def _dtype_bytes_or_2(dtype) -> int:
    """Bytes per activation element of a profile's dtype; 2 (bf16/fp16) where unstated or unknown."""
    try:
        return int(dtype_bytes(normalize_dtype(dtype) or "bfloat16"))
    except (KeyError, ValueError):
        return 2


def build_observations(frame: pd.DataFrame, framework: str, *, response: str = "main") -> Observations:
    """Fitting table of ``framework`` from a profiles DataFrame.

    Parameters
    ----------
    frame : pandas.DataFrame
        :meth:`fitting.data.profiles.ProfileSet.to_frame` (all frameworks; rows of other
        frameworks are ignored). Memory columns ``<quantity>_gib`` in GiB.
    framework : str
        Framework family id (``vllm``, ``transformers``, ...).
    response : {"main", "cuda_graph"}
        ``main``: the framework's observed quantity. ``cuda_graph``: the reported
        CUDA-graph memory (GiB per GPU) of every usable profile that states it, whether or
        not the profile states every component of the main response.

    Returns
    -------
    Observations
        Used rows with response ``y_gib`` (GiB per GPU) and features, plus the excluded
        profiles with their reasons. See the module docstring for every choice made.
    """
    info = framework_info(framework)
    quantity = {"name": info.observed_quantity, "description": info.description}
    fr = frame[frame["framework"] == framework].reset_index(drop=True) if len(frame) else frame
    n_total = len(fr)
    excluded: list[dict] = []
    empty = Observations(framework, info.kv_cache_mode, quantity,
                         pd.DataFrame(columns=list(_TABLE_COLUMNS) + list(FEATURE_NAMES)),
                         {k: np.zeros(0) for k in FEATURE_NAMES}, excluded, n_total)
    if n_total == 0:
        return empty

    pid = _str(fr, "profile_id")
    reason = np.array([None] * n_total, dtype=object)

    def _exclude(mask, why):
        for i in np.flatnonzero(mask & np.array([r is None for r in reason])):
            reason[i] = why(i) if callable(why) else why

    use = _bool(fr, "use_in_fit", True)
    why_not = _str(fr, "exclude_reason")
    _exclude(~use, lambda i: f"not use_in_fit: {why_not[i] or 'no reason given'}")

    model_ids = _str(fr, "model_id")
    _exclude(np.array([m is None for m in model_ids]), "model unnamed")
    entries = _resolve_models(model_ids[np.array([r is None for r in reason])])
    for i, m in enumerate(model_ids):
        if reason[i] is None and entries.get(m, (None, None))[1] is not None:
            reason[i] = entries[m][1]

    if framework == "vllm":
        # vLLM's profile run of a multimodal model first encodes its dummy images / audio through
        # the tower (gpu_model_runner.profile_run: _dummy_mm_... before the dummy forward); the
        # physics has no tower activations, so the fit would absorb them (InternVL3-78B prints
        # 15.7 GiB of activation peak against 1.5 GiB of language-model physics). A start with
        # --language-model-only builds no tower and encodes nothing: it is a text model.
        lm_only = (fr["language_model_only"].tolist() if "language_model_only" in fr.columns
                   else [None] * n_total)
        for i, m in enumerate(model_ids):
            entry = (entries.get(m) or (None, None))[0] if reason[i] is None else None
            arch = getattr(entry, "architecture", None)
            if arch is not None and (arch.extra or {}).get("multimodal_towers") and lm_only[i] is not True:
                reason[i] = ("multimodal model: vLLM's profile run also encodes dummy multimodal inputs through "
                             "its tower, which the physics does not model")
    # --- per-GPU response
    y, w_meas, form, missing = _response(fr, framework,
                                         _kv_from_tokens(fr, entries, framework)
                                         if framework in ("vllm", "sglang", "tgi") else None)
    if response == "cuda_graph":
        y = _num(fr, "cuda_graph_gib")
        if framework == "vllm":
            # 0.20+ takes its own estimate out of the KV budget (not the later capture): where the
            # log states it, that is the graph memory the pool is sized against
            est = _num(fr, "cuda_graph_estimate_gib")
            counted = np.array([graphs_in_pool_budget(v) for v in _str(fr, "framework_version")])
            y = np.where(counted & np.isfinite(est) & (est > 0), est, y)
        y = np.where(y > 0, y, np.nan)  # 0 = graphs not captured (eager) or not reported
        form = np.array(["cuda_graph"] * n_total, dtype=object)
        missing = np.array(["cuda_graph"] * n_total, dtype=object)
        quantity = {"name": "cuda_graph_gib",
                    "description": ("CUDA-graph memory per GPU as reported by the framework (GiB); for vLLM "
                                    "0.20+ its own estimate where the log states it (what the KV budget "
                                    "subtracts), else the captured size.")}
    elif response != "main":
        raise ValueError(f"unknown response {response!r}; expected 'main' or 'cuda_graph'")
    elif framework == "transformers":
        # measurement model: allocated + non-torch totals, less the GPU's non-torch memory
        # estimated from paired NVML-used / reserved profiles (fitting.overhead.measurement)
        non_torch = estimate_non_torch(fr)
        total = _num(fr, "peak_total_gib")
        flags = fr["flags"].tolist() if "flags" in fr.columns else [()] * n_total
        gname = _str(fr, "gpu_name")
        used_models = {}
        for i in np.flatnonzero(np.isnan(y) & np.isfinite(total)):
            if ALLOCATED_PLUS_NON_TORCH not in tuple(flags[i] or ()):
                continue
            est = non_torch.get(str(gname[i]))
            if est is None:
                missing[i] += (f"; peak_total is allocated + non-torch, and no paired NVML-used/reserved "
                               f"profiles estimate the non-torch memory of {gname[i]}")
                continue
            y[i] = total[i] - est.estimate_gib
            form[i] = ALLOCATED_PLUS_NON_TORCH
            used_models[est.gpu_name] = est.to_json()
        # a reserved peak of one prefill pass, or an NVML reading right after it (reserved +
        # C_gpu): the allocated peak through the allocator-slack model once the weights are
        # known (below); the same figures of a generate run stay out (fragmentation)
        phase = _str(fr, "phase")
        reserved = _num(fr, "peak_reserved_gib")
        slack_reserved = np.full(n_total, np.nan)
        for i in np.flatnonzero(np.isnan(y)):
            r_i = reserved[i]
            if not np.isfinite(r_i) and np.isfinite(total[i]) and NVML_USED_AFTER_CALL in tuple(flags[i] or ()):
                if CACHE_NOT_EMPTIED in tuple(flags[i] or ()):
                    missing[i] += ("; peak_total is an NVML reading in a process whose allocator cache was never "
                                   "emptied before the call (holds segments cached by loading and earlier calls), "
                                   "not modelled")
                    continue
                est = non_torch.get(str(gname[i]))
                if est is None:
                    missing[i] += (f"; peak_total is an NVML reading (reserved + non-torch), and no paired "
                                   f"profiles estimate the non-torch memory of {gname[i]}")
                    continue
                r_i = total[i] - est.estimate_gib
                used_models[est.gpu_name] = est.to_json()
            if not np.isfinite(r_i):
                continue
            if phase[i] != "prefill":
                missing[i] += ("; only a reserved or NVML figure of a generate run: the growing KV cache "
                               "fragments PyTorch's allocator (reserved - allocated is 0.1 to 6.7 x the "
                               "activations in paired runs), not modelled")
                continue
            slack_reserved[i], y[i], form[i] = r_i, r_i, RESERVED_SLACK
        if used_models:
            quantity = dict(quantity, measurement_models=[used_models[k] for k in sorted(used_models)])
    n_gpu_stated = _num(fr, "gpu_count")
    tp, _ = _positive_int_or(_num(fr, "tp"), 1.0)
    pp, _ = _positive_int_or(_num(fr, "pp"), 1.0)
    scope = _str(fr, "measured_scope")
    summed = np.array([s == "sum_over_gpus" for s in scope])
    n_div = np.where(np.isfinite(n_gpu_stated) & (n_gpu_stated >= 1), n_gpu_stated, tp * pp)
    y = np.where(summed, y / n_div, y)
    w_meas = np.where(summed, w_meas / n_div, w_meas)
    cuda_graph = _num(fr, "cuda_graph_gib")
    cuda_graph = np.where(summed, cuda_graph / n_div, cuda_graph)
    _exclude(~np.isfinite(y), lambda i: f"missing component: {missing[i]}")
    _exclude(np.isfinite(y) & (y <= 0), "non-positive response")
    _exclude(np.isfinite(w_meas) & (w_meas <= 0), "no weights on the GPU (measured weights 0: CPU run)")

    if framework == "llamacpp":
        # llama.cpp keeps the input embedding table in host memory even when every layer is
        # offloaded (llama-model.cpp: the input layer's device is the CPU), so a host buffer alone
        # is no sign of offload: a start that says "offloaded N/N layers to GPU" and holds less on
        # the host than on the GPU is a full offload (Qwen3-4B Q4_K_M: 304 MiB of token_embd on the
        # host, 2376 MiB on the GPU); --n-cpu-moe starts also print N/N but keep the experts on the
        # host, far more than on the GPU. Without the layer count, more than 10% of the weights on
        # the host counts as partial offload.
        w_cpu = _num(fr, "weights_cpu_gib")
        n_gpu, n_all = _num(fr, "n_gpu_layers"), _num(fr, "n_layers_total")
        all_layers = np.isfinite(n_gpu) & np.isfinite(n_all) & (n_gpu >= n_all)
        some_layers = np.isfinite(n_gpu) & np.isfinite(n_all) & (n_gpu < n_all)
        host_heavy = np.isfinite(w_cpu) & np.isfinite(w_meas) & np.where(
            all_layers, w_cpu >= w_meas, w_cpu > _MAX_CPU_WEIGHT_SHARE * w_meas)
        _exclude(some_layers | host_heavy, "partial CPU offload (KV and compute-buffer placement not modelled)")

    # --- workload
    b_stated = _num(fr, "batch_size")
    seqs = _num(fr, "max_num_seqs")
    if info.kv_cache_mode == "pool":
        # the non-KV footprint is set at start-up by the server's capacity, not by the
        # concurrency of a later benchmark, so a benchmark batch_size is not used here
        b_src = seqs
        if framework == "vllm":
            # vLLM's own defaults depend on the version, engine, GPU tier and max_model_len
            # (fitting.data.frameworks.vllm_defaults, read from vLLM's arg_utils)
            gmem, gname = _num(fr, "gpu_memory_gib"), _str(fr, "gpu_name")
            # the memory tier of a GPU named but not sized: the table's figure (an estimate will
            # do here, the tiers are 70 / 160 GiB apart); without it an H100/H200 fell into the
            # < 70 GiB tier and got 256 sequences instead of vLLM's 1024
            gmem = np.array([g if np.isfinite(g) else getattr(find_gpu(n), "usable_gib", math.nan)
                             for g, n in zip(gmem, gname)], dtype=float)
            eng, ver = _str(fr, "engine"), _vllm_versions(fr)
            mml = _num(fr, "max_model_len")
            vd = [vllm_defaults(ver[i], engine=eng[i], gpu_name=gname[i],
                                gpu_memory_gib=None if not np.isfinite(gmem[i]) else gmem[i],
                                max_model_len=None if not np.isfinite(mml[i]) else int(mml[i]))
                  for i in range(n_total)]
            default_b = np.array([float(d["max_num_seqs"]) for d in vd])
        else:
            default_b = float(info.defaults.get("max_num_seqs", 1))
    else:
        b_src = b_stated
        default_b = 1.0
    b, b_def = _positive_int_or(b_src, default_b)
    mnbt_default = info.defaults.get("max_num_batched_tokens", info.defaults.get("n_ubatch"))
    mnbt_raw = _num(fr, "max_num_batched_tokens")
    mnbt_def = ~np.isfinite(mnbt_raw)
    text_settings = _vllm_text_settings(fr) if framework == "vllm" else None
    if framework == "vllm":
        mnbt_default = np.array([np.nan if d["max_num_batched_tokens"] is None else float(d["max_num_batched_tokens"])
                                 for d in vd])
        # a V1 multimodal start that profiled two or more items printed its token budget as
        # the encoder budget (fitting.physics.vllm.max_num_batched_tokens_from_encoder_budget)
        from_budget = np.array([np.nan if (t := max_num_batched_tokens_from_encoder_budget(
            st["encoder_budget_tokens"], st["encoder_items_profiled"], eng[i] or "v1")) is None else float(t)
            for i, st in enumerate(text_settings)])
        read = mnbt_def & np.isfinite(from_budget)
        mnbt_raw = np.where(read, from_budget, mnbt_raw)
        mnbt_def = mnbt_def & ~read
        mnbt = np.where(mnbt_def, mnbt_default, mnbt_raw)
    else:
        mnbt = np.where(mnbt_def, np.nan if mnbt_default is None else float(mnbt_default), mnbt_raw)

    in_len = _num(fr, "input_len")
    out_len = _num(fr, "output_len")
    ctx = _num(fr, "context_len")
    if framework == "llamacpp":
        _exclude(~np.isfinite(ctx), "missing workload: context_len (n_ctx sizes the KV buffer)")
        in_len = np.where(np.isfinite(ctx), ctx, 0.0)
        out_len = np.zeros(n_total)
        kv_seqs = np.ones(n_total)
    elif info.kv_cache_mode == "growing":
        have_len = np.isfinite(in_len) | np.isfinite(out_len)
        _exclude(~have_len & ~np.isfinite(ctx),
                 "missing workload: input_len/output_len and context_len (workload KV unknown)")
        in_len = np.where(have_len, np.nan_to_num(in_len), np.nan_to_num(ctx))
        out_len = np.where(have_len, np.nan_to_num(out_len), 0.0)
        kv_seqs = b
    else:
        in_len = np.nan_to_num(in_len)
        out_len = np.nan_to_num(out_len)
        kv_seqs = b

    dtype = _str(fr, "dtype")
    quant = _str(fr, "quantization")
    kv_dtype = _str(fr, "kv_cache_dtype")

    # --- features, one build_features call per (model, dtype, quantization, kv dtype)
    keep = np.array([r is None for r in reason])
    feats = {k: np.full(n_total, np.nan) for k in FEATURE_NAMES}
    params_b = np.full(n_total, np.nan)
    is_moe = np.zeros(n_total, dtype=bool)
    canon = np.array([None] * n_total, dtype=object)
    arch_keys = np.array([None] * n_total, dtype=object)
    group = np.array([None] * n_total, dtype=object)
    dtype_def = np.zeros(n_total, dtype=bool)
    w_used_meas = np.isfinite(w_meas)
    groups: dict = {}
    version = _vllm_versions(fr) if framework == "vllm" else _str(fr, "framework_version")
    engine = _str(fr, "engine")
    # the GPU model runner a vLLM log names ("Using V2 Model Runner"); None: the version's default
    runner = _str(fr, "model_runner")
    tf_settings = _transformers_settings(fr) if framework == "transformers" else None
    interconnect = _vllm_interconnect(fr, text_settings) if framework == "vllm" else None
    # FlashInfer's sampler ran / did not, as the run's own log line says; None: the pip default
    sampler_fi = [st["sampler_flashinfer"] for st in text_settings] if framework == "vllm" else None
    lc_settings = _llamacpp_settings(fr) if framework == "llamacpp" else None
    for i in np.flatnonzero(keep):
        if framework == "vllm":
            vkey = (version[i], (engine[i], sampler_fi[i], runner[i]))
        elif tf_settings is not None:
            vkey = (tf_settings[i]["version"], tuple(sorted((k, str(v)) for k, v in tf_settings[i].items())))
        elif lc_settings is not None:
            vkey = (None, tuple(sorted(lc_settings[i].items())))
        elif framework == "tgi":
            vkey = (version[i], None)  # the release selects the warm-up's mechanics
        else:
            vkey = (None, None)
        groups.setdefault((model_ids[i], dtype[i], quant[i], kv_dtype[i]) + vkey, []).append(i)
    for (mid, dt, qu, kvd, ver_g, eng_g), rows in sorted(groups.items(), key=lambda kv: str(kv[0])):
        rows = np.array(rows)
        entry = entries[mid][0]
        arch = entry.architecture
        dt_eff = dt or default_dtype(arch, framework)
        dtype_def[rows] = dt is None
        kw = dict(framework=framework, tp=tp[rows].astype(int), pp=pp[rows].astype(int),
                  batch_size=kv_seqs[rows], input_len=in_len[rows], output_len=out_len[rows],
                  # no framework default and a row silent: let physics use its own rule
                  max_num_batched_tokens=(None if np.any(np.isnan(mnbt[rows])) else mnbt[rows]),
                  dtype=dt_eff, kv_cache_dtype=kvd or "auto",
                  weights_bytes=w_meas[rows] * _GIB)
        if framework == "vllm":
            # the version selects the profile run's mechanics; a pipeline-parallel profile
            # prints its first stage, which runs no sampler
            kw.update(framework_version=ver_g, engine=eng_g[0], last_stage=pp[rows] <= 1,
                      interconnect=interconnect[rows], sampler_flashinfer=eng_g[1], model_runner=eng_g[2])
        elif tf_settings is not None:
            tfs = dict(tf_settings[rows[0]])
            if tfs.get("peak_includes_load"):
                # the figure also covers from_pretrained: tensors the checkpoint stores twice
                tfs["load_transient_bytes"] = load_transient_bytes(
                    arch, tied_copies=getattr(entry, "checkpoint_tied_copies", ()), dtype=dt_eff)
            kw.update(framework_version=ver_g, transformers_settings=tfs)
        elif lc_settings is not None:
            kw.update(llamacpp_settings=lc_settings[rows[0]])
        elif framework == "tgi":
            kw.update(framework_version=ver_g)
        try:
            f = _features_for_group(arch, _checkpoint_format(qu, entry), np.all(np.isfinite(w_meas[rows])), kw)
        except Exception as exc:  # noqa: BLE001 - any physics failure excludes the group
            for i in rows:
                reason[i] = f"physics failed: {type(exc).__name__}: {exc}"
            continue
        for k in FEATURE_NAMES:
            feats[k][rows] = np.broadcast_to(f[k], rows.shape)
        feats["batch_size"][rows] = b[rows]  # overhead batch (kv_seqs only sizes the KV)
        n = feats["n_gpus"][rows]
        meas = np.isfinite(w_meas[rows])
        feats["weights_total_gib"][rows] = np.where(meas, w_meas[rows] * n, feats["weights_total_gib"][rows])
        params_b[rows] = _params_b(entry)
        is_moe[rows] = bool(getattr(arch, "is_moe", False))
        canon[rows] = getattr(entry, "id", mid) or mid
        arch_keys[rows] = architecture_key(arch)
        group[rows] = getattr(entry, "alias_of", None) or canon[rows[0]]
    if framework == "vllm" and response == "main":
        _exclude_visible_cold_compile(fr, entries, model_ids, reason, b, mnbt, tp, pp, version, runner, sampler_fi,
                                      dtype, quant)
        _exclude_cold_with_warm_twin(fr, reason, y)
    feats["model_mem_gib"] = feats["weights_gib"] + feats["kv_gib"] + feats["activations_gib"]
    finite = np.all(np.column_stack([np.isfinite(feats[k]) for k in FEATURE_NAMES]), axis=1)
    _exclude(~finite, lambda i: "physics failed: non-finite features ("
             + ", ".join(k for k in FEATURE_NAMES if not np.isfinite(feats[k][i])) + ")")
    if framework == "transformers" and response == "main":
        y = _apply_slack_model(y, form, slack_reserved, reserved, phase, feats["weights_gib"], finite, reason,
                               pid, quantity)
    if response == "main":
        # the error model puts the error on the uncertain part y - (weights + workload KV):
        # a measurement at or below the exact part is a unit or scope mismatch, not overhead
        exact = feats["weights_gib"] + feats["kv_gib"]
        _exclude(finite & (y - exact <= 0), lambda i: (
            f"measured {y[i]:.3f} GiB is at or below the exact weights + workload KV "
            f"{exact[i]:.3f} GiB per GPU (unit, scope or KV-accounting mismatch)"))
        # the error is relative (log) on that uncertain part: below the resolution of the exact part
        # itself (non-parameter buffers and allocator rounding that the weight count leaves out) a
        # few MiB read as a factor of several, and one such run widens every interval
        floor = UNCERTAIN_PART_RESOLUTION * exact
        _exclude(finite & (y - exact > 0) & (y - exact < floor), lambda i: (
            f"uncertain part {y[i] - exact[i]:.3f} GiB (measured {y[i]:.3f} - exact {exact[i]:.3f}) is below the "
            f"resolution of the exact part ({UNCERTAIN_PART_RESOLUTION:.2%} of it, {floor[i]:.3f} GiB): its "
            "relative error carries no information"))

    keep = np.array([r is None for r in reason])
    for i in np.flatnonzero(~keep):
        excluded.append({"profile_id": str(pid[i]), "reason": str(reason[i])})
    excluded.sort(key=lambda d: d["profile_id"])
    idx = np.flatnonzero(keep)
    order = idx[np.argsort(pid[idx].astype(str), kind="stable")]
    table = pd.DataFrame({
        "profile_id": pid[order].astype(str),
        "model_id": canon[order],
        "model_key": group[order],
        "arch_key": arch_keys[order],
        "params_b": params_b[order],
        "is_moe": is_moe[order],
        "size_class": [size_class(p, m) for p, m in zip(params_b[order], is_moe[order])],
        "y_gib": y[order],
        "response_form": form[order],
        "weights_measured": w_used_meas[order],
        "batch_defaulted": b_def[order],
        "mnbt_defaulted": mnbt_def[order],
        "dtype_defaulted": dtype_def[order],
        "tp": tp[order],
        "pp": pp[order],
        "series": _str(fr, "series")[order],
        "input_len": in_len[order],
        "output_len": out_len[order],
        "cuda_graph_gib": cuda_graph[order] if framework == "vllm" else np.full(order.size, np.nan),
    })
    features = {k: np.ascontiguousarray(v[order]) for k, v in feats.items()}
    for k in FEATURE_NAMES:
        table[k] = features[k]
    return Observations(framework, info.kv_cache_mode, quantity, table, features, excluded, n_total)
