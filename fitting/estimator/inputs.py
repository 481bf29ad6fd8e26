"""Inputs of the estimator: models named by id, path or object, workload settings and checks.

Every public query of :class:`fitting.estimator.Estimator` takes the same workload keywords
(:data:`WORKLOAD_KEYS`); this module turns them into one settings dict and checks them, so
that the prediction, the inverse queries and the CLI answer validate input the same way.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from fitting.data.registry import resolve_model
from fitting.physics.parameters import count_parameters

__all__ = ["NUMERIC_KEYS", "WORKLOAD_KEYS", "resolve_model_arg", "params_billions", "workload_kwargs",
           "settings_to_workload", "plain_settings", "is_frame", "show_value", "fmt_g", "check_alpha",
           "check_probability", "check_gpu_memory"]


@lru_cache(maxsize=256)
def _resolve_id(model: str):
    entry = resolve_model(model)
    return entry.architecture, entry, str(getattr(entry, "id", model))


def resolve_model_arg(model):
    """model (id, alias, config.json path, ModelEntry, Architecture) -> (arch, entry, name)."""
    if model is None:
        raise ValueError("no model given: pass a registry id, an alias or a config.json path")
    if hasattr(model, "num_attention_heads") and hasattr(model, "num_layers"):  # an Architecture
        return model, None, f"<{model.model_type} architecture>"
    if hasattr(model, "entry") and hasattr(model, "source"):  # a ResolvedModel of the model source chain
        model = model.entry
    if hasattr(model, "architecture"):
        return model.architecture, model, str(getattr(model, "id", "<model>"))
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    return _resolve_id(str(model))


@lru_cache(maxsize=256)
def _params_b_of(arch):
    return count_parameters(arch).total / 1e9


def params_billions(arch, entry):
    total = getattr(entry, "params_total", None) if entry is not None else None
    if total is not None:
        return float(total) / 1e9
    try:
        return _params_b_of(arch)
    except TypeError:  # unhashable architecture
        return count_parameters(arch).total / 1e9


NUMERIC_KEYS = ("tp", "pp", "batch_size", "input_len", "output_len", "max_model_len", "max_num_batched_tokens",
                "concurrency")
WORKLOAD_KEYS = ("tp", "pp", "batch_size", "concurrency", "enforce_eager", "framework_version", "interconnect",
                 "input_len",
                 "output_len", "max_model_len",
                  "max_num_batched_tokens", "dtype", "quantization", "kv_cache_dtype")


def workload_kwargs(workload):
    unknown = set(workload) - set(WORKLOAD_KEYS)
    if unknown:
        raise TypeError(f"unknown setting(s) {sorted(unknown)}; expected {WORKLOAD_KEYS}")
    out = {k: None for k in WORKLOAD_KEYS}
    out.update(tp=1, pp=1)
    out.update(workload)
    return out


def settings_to_workload(settings):
    """Settings of a Prediction (defaults applied) -> workload keywords."""
    return {k: settings[k] for k in WORKLOAD_KEYS if k in settings}


def plain_settings(s):
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


def is_frame(obj):
    return type(obj).__module__.startswith("pandas") and hasattr(obj, "columns")


def show_value(v):
    a = np.asarray(v)
    if a.ndim == 0:
        x = a.item()
        return fmt_g(x) if isinstance(x, float) else repr(x)
    return f"array of {a.size} values (min {fmt_g(float(np.min(a)))}, max {fmt_g(float(np.max(a)))})"


def fmt_g(x):
    return f"{x:g}" if isinstance(x, float) else str(x)


def check_alpha(alpha):
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")


def check_probability(p, name):
    if not 0.0 < float(p) < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {p}")


def check_gpu_memory(g):
    g = np.asarray(g, dtype=float)
    if np.any(~np.isfinite(g)) or np.any(g <= 0):
        raise ValueError(f"GPU memory must be a positive number of GiB, got {show_value(g)}")

