"""Seed-plan profiles (``provenance.kind == "seed-plan"`` or under ``profiles/seed-plan/``):
what their figure most likely measured.

The seed plan's figures are not scored (they are not measurements of a stated quantity);
each is shown next to the candidate explanations the physics and the fitted estimator give
for its configuration, GiB per GPU:

* ``preallocated pool``: a framework with a KV pool takes a fixed fraction ``u`` of the
  GPU (vLLM ``gpu_memory_utilization``, default 0.9; SGLang ``mem_fraction_static``,
  0.88; ...) whatever the model: nvidia-smi shows about ``u x G``;
* ``non-KV footprint``: weights + activations + overhead (the estimator's ``non_kv_gib``);
* ``with workload KV``: the estimator's total for the stated workload;
* ``weights only``: the physics weights.

The most likely explanation follows the rules of :func:`explain_one`.
"""

from __future__ import annotations

import math

import numpy as np

from fitting.data.frameworks import framework_info
from fitting.data.gpus import GPUS, gpu_info

_MEASURED_ORDER = ("peak_total_gib", "peak_unspecified_gib", "peak_reserved_gib", "peak_allocated_gib",
                   "non_kv_total_gib", "weights_gib")
_POOL_FRACTION_KEYS = ("gpu_memory_utilization", "mem_fraction_static", "free_gpu_memory_fraction",
                       "cuda_memory_fraction")


def _num(v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.nan
    return v


def _gpu_gib(row):
    g = _num(row.get("gpu_memory_gib"))
    if math.isfinite(g) and g > 0:
        return g, "profile"
    name = row.get("gpu_name")
    if isinstance(name, str) and name:
        try:

            return float(gpu_info(name).usable_gib), f"GPU table ({name})"
        except (KeyError, ValueError):
            pass
    return math.nan, None


def _workload(row, pool=False):
    kw = {}
    for key in ("tp", "pp", "batch_size", "input_len", "output_len", "max_num_batched_tokens"):
        v = _num(row.get(key))
        if math.isfinite(v) and v > 0:
            kw[key] = int(v)
    if pool and "batch_size" in kw:
        # a stated batch of a preallocating engine is the workload's concurrency (its KV); the
        # engine's max_num_seqs, where stated, sizes the buffers
        kw["concurrency"] = kw.pop("batch_size")
        v = _num(row.get("max_num_seqs"))
        if math.isfinite(v) and v > 0:
            kw["batch_size"] = int(v)
    elif "batch_size" not in kw:
        v = _num(row.get("max_num_seqs"))
        if math.isfinite(v) and v > 0:
            kw["batch_size"] = int(v)
    for key in ("dtype", "quantization", "kv_cache_dtype"):
        v = row.get(key)
        if isinstance(v, str) and v:
            kw[key] = v
    return kw


def _nearest_pool(y_gib, u):
    """The NVIDIA/AMD GPU whose ``u x usable memory`` is closest to ``y_gib``: (name, GiB)."""

    best = min(GPUS.values(), key=lambda g: abs(math.log(y_gib / (u * g.usable_gib))))
    return best.name, u * best.usable_gib


def explain_one(row, estimators: dict) -> dict:
    """Most likely meaning of one seed-plan profile's figure, with the evidence (GiB per GPU).

    Rules, in order: below the physics weights -> another checkpoint (quantized) or not a
    per-GPU figure; inside the estimator's prediction interval for the stated workload ->
    consistent with the model's need; above it, for a framework with a preallocated KV
    pool -> a whole-GPU reading of the pool fraction (the GPU whose ``u x memory`` is
    nearest is named, u the stated or default fraction); above it otherwise -> memory the
    model does not need (allocator cache, other processes); below the interval -> below
    the prediction.
    """

    fw = row.get("framework")
    out = {"profile_id": row.get("profile_id"), "framework": fw, "model_id": row.get("model_id"),
           "path": row.get("path"), "measured_field": None, "measured_gib": None, "candidates": [],
           "most_likely": None, "explanation": None}
    for key in _MEASURED_ORDER:
        v = _num(row.get(key))
        if math.isfinite(v) and v > 0:
            out["measured_field"], out["measured_gib"] = key[:-4], v
            break
    if out["measured_gib"] is None:
        out["explanation"] = "no memory figure to explain"
        return out
    y = out["measured_gib"]
    try:
        info = framework_info(fw)
    except ValueError:
        info = None
    pool = info is not None and info.kv_cache_mode == "pool"
    u = math.nan
    for key in _POOL_FRACTION_KEYS:
        u = _num(row.get(key))
        if math.isfinite(u):
            break
    if pool and not math.isfinite(u):
        u = next((float(info.defaults[k]) for k in _POOL_FRACTION_KEYS if k in info.defaults), math.nan)
    G, g_src = _gpu_gib(row)
    pred = None
    est = estimators.get(fw)
    model = row.get("model_id")
    if est is not None and isinstance(model, str) and model:
        try:
            pred = est.predict(model, alpha=0.10, **_workload(row, pool=est.kv_cache_mode == "pool"))
        except Exception as exc:  # noqa: BLE001 - explanation without the estimator
            out["estimator_error"] = f"{type(exc).__name__}: {exc}"
    cands = []
    if pred is not None:
        need = pred.non_kv_gib + pred.kv_cache_gib if pool else pred.total_gib
        lo = pred.non_kv_lower_gib + pred.kv_cache_gib if pool else pred.total_lower_gib
        hi = pred.non_kv_upper_gib + pred.kv_cache_gib if pool else pred.total_upper_gib
        cands += [("weights only", pred.weights_gib, "the physics weights per GPU"),
                  ("model need", need, f"non-KV + the workload's KV cache, 90% interval [{lo:.2f}, {hi:.2f}] GiB "
                                       f"(estimator, coefficient file v{est.version}, {est.status})")]
    if pool and math.isfinite(u):
        if math.isfinite(G):
            cands.append(("preallocated pool", u * G, f"{u:g} x the {G:.2f} GiB GPU ({g_src})"))
        else:
            name, v = _nearest_pool(y, u)
            cands.append(("preallocated pool", v, f"{u:g} x {name}, the GPU whose pool fraction is nearest "
                                                  "(the figure's GPU is not recorded)"))
    for name, v, why in cands:
        if v is not None and math.isfinite(v) and v > 0:
            out["candidates"].append({"name": name, "value_gib": float(v), "log_ratio": float(math.log(y / v)),
                                      "meaning": why})
    c = {d["name"]: d for d in out["candidates"]}
    if pred is None:
        why = (f"no coefficient file for {fw}" if est is None else
               f"the estimator cannot predict it ({out.get('estimator_error', 'model not named')})")
        if "preallocated pool" in c:
            out["most_likely"] = "preallocated pool"
            out["explanation"] = (f"{y:.2f} GiB ({why}): a {fw} start shows "
                                  f"its preallocated fraction, e.g. {c['preallocated pool']['meaning']} = "
                                  f"{c['preallocated pool']['value_gib']:.2f} GiB")
        else:
            out["explanation"] = f"no explanation could be computed: {why}"
        return out
    if y < 0.95 * pred.weights_gib:
        out["most_likely"] = "another checkpoint or not per GPU"
        out["explanation"] = (f"{y:.2f} GiB is below the {pred.weights_gib:.2f} GiB of weights per GPU alone: "
                              "another (quantized) checkpoint ran, or the figure is not per GPU")
    elif lo <= y <= hi:
        out["most_likely"] = "model need"
        out["explanation"] = (f"{y:.2f} GiB lies inside the estimator's 90% interval for the stated workload "
                              f"[{lo:.2f}, {hi:.2f}] GiB: consistent with what the model needs")
    elif y > hi and "preallocated pool" in c:
        pp = c["preallocated pool"]
        out["most_likely"] = "preallocated pool"
        out["explanation"] = (f"{y:.2f} GiB is {y / need:.1f}x what the configuration needs ({need:.2f} GiB, "
                              f"90% interval up to {hi:.2f}): most likely a whole-GPU reading of {fw}'s "
                              f"preallocated KV pool, which takes a fixed fraction of the GPU whatever the model "
                              f"(e.g. {pp['meaning']} = {pp['value_gib']:.2f} GiB)")
    elif y > hi:
        out["most_likely"] = "memory beyond the model's need"
        out["explanation"] = (f"{y:.2f} GiB is above the estimator's 90% interval [{lo:.2f}, {hi:.2f}] GiB: "
                              "memory the model does not need (allocator cache, other processes) or a larger "
                              "workload than recorded")
    else:
        out["most_likely"] = "below the prediction"
        out["explanation"] = (f"{y:.2f} GiB is below the estimator's 90% interval [{lo:.2f}, {hi:.2f}] GiB: a "
                              "smaller workload or weights than assumed")
    applied = getattr(pred, "defaults_applied", {}) or {}
    if out["most_likely"] != "another checkpoint or not per GPU" and ("input_len" in applied or "batch_size" in applied):
        out["explanation"] += (f" (assumed where not recorded: "
                               f"{pred.settings.get('concurrency') or pred.settings.get('batch_size')} sequence(s) of "
                               f"{pred.settings.get('input_len', 0) + pred.settings.get('output_len', 0)} tokens)")
    out["defaults_applied"] = dict(applied)
    return out


def explain_seed_plan(frame, estimators: dict) -> list:
    """:func:`explain_one` for every row of a profiles DataFrame of seed-plan profiles."""
    rows = frame.to_dict(orient="records")
    out = []
    for r in rows:
        r = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
        out.append(explain_one(r, estimators))
    return out
