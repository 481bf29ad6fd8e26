"""Inverse queries: what fits on a GPU, at a stated confidence.

The probability that a configuration fits, the largest batch size and context length that
fit, vLLM's KV pool in tokens and the smallest ``gpu_memory_utilization`` that holds a
workload. Each is a function of an :class:`fitting.estimator.Estimator` (which also offers
them as methods) and evaluates the same predictive distributions as
:meth:`~fitting.estimator.Estimator.predict`.
"""

from __future__ import annotations

import math

import numpy as np

from fitting.estimator.pool import POOL_BLOCK_TOKENS
from fitting.physics.vllm import vllm_hybrid_kv_layout, vllm_max_concurrency, vllm_pool_tokens
from fitting.estimator.inputs import (
    NUMERIC_KEYS,
    check_alpha,
    check_gpu_memory,
    check_probability,
    workload_kwargs,
)

__all__ = ["fit_probability", "max_batch_size", "max_context_len", "kv_pool_tokens", "kv_pool_concurrency",
           "min_gpu_memory_utilization", "MAX_BATCH_SEARCH", "MAX_CONTEXT_SEARCH"]

_GIB = float(2**30)
#: Search limits of the inverse queries.
MAX_BATCH_SEARCH = 2**20
MAX_CONTEXT_SEARCH = 2**24
#: Candidates evaluated per round of the (vectorised) inverse searches.
SEARCH_SPLIT = 64


def fit_probability(est, model, *, gpu_memory_gib, gpu_memory_utilization=None, **workload):
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
    check_gpu_memory(gpu_memory_gib)
    arch, entry, name, s, _ = est.resolve_workload(model, **workload_kwargs(workload))
    p = est.fit_probability_of(est.components(arch, s), gpu_memory_gib, est.utilization(gpu_memory_utilization, s))
    return float(p) if np.ndim(p) == 0 else p

def _max_search(est, model, vary, gpu_memory_gib, confidence, gpu_memory_utilization, workload, cap):
    check_gpu_memory(gpu_memory_gib)
    check_probability(confidence, "confidence")
    base = workload_kwargs(workload)
    arch, entry, name, s, _ = est.resolve_workload(model, **base)
    u = est.utilization(gpu_memory_utilization, s)

    shape = np.broadcast(*[np.asarray(s[k]) for k in ("tp", "pp", "batch_size", "concurrency", "input_len",
                                                      "output_len")],
                         np.asarray(gpu_memory_gib), np.asarray(u)).shape
    G = np.asarray(gpu_memory_gib, float)[..., None]
    uu = np.asarray(u, float)[..., None]
    base_s = {k: (np.broadcast_to(np.asarray(v), shape)[..., None]
                  if k in NUMERIC_KEYS and v is not None else v) for k, v in s.items()}

    def fits(cand):
        """(shape + (K,)) booleans: does candidate value k fit in row i?"""
        ss = dict(base_s)
        if vary in ("batch_size", "concurrency"):
            ss[vary] = cand
        else:
            ss["input_len"], ss["output_len"], ss["max_model_len"] = cand, np.zeros_like(cand), None
        p = est.fit_probability_of(est.components(arch, ss), G, uu)
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
    k = np.arange(1, SEARCH_SPLIT + 1)
    while np.any(hi - lo > 1):
        cand = lo[..., None] + ((hi - lo)[..., None] * k) // (SEARCH_SPLIT + 1)
        cand = np.clip(cand, lo[..., None] + 1, np.maximum(hi[..., None] - 1, lo[..., None] + 1))
        lo_new, hi_new = refine(cand.astype(float), lo, hi)
        done = hi - lo <= 1
        lo, hi = np.where(done, lo, lo_new.astype(np.int64)), np.where(done, hi, hi_new.astype(np.int64))
    return lo if lo.ndim else int(lo)

def max_batch_size(est, model, *, gpu_memory_gib, confidence=0.95, gpu_memory_utilization=None, **workload):
    """Largest batch size (concurrent sequences) that fits with probability >= ``confidence``.

    For a framework with a KV pool this is the largest workload *concurrency* whose KV the
    pool holds (the engine's ``max_num_seqs`` stays as given: it sizes buffers, not the pool).
    Returns 0 when not even one sequence fits and :data:`MAX_BATCH_SEARCH` when the
    search limit still fits. ``batch + 1`` then fits with probability < ``confidence``.
    Other settings as :meth:`fit_probability`.
    """
    vary = "concurrency" if est.kv_cache_mode == "pool" else "batch_size"
    return _max_search(est, model, vary, gpu_memory_gib, confidence, gpu_memory_utilization,
                       workload, MAX_BATCH_SEARCH)

def max_context_len(est, model, *, gpu_memory_gib, confidence=0.95, gpu_memory_utilization=None, **workload):
    """Longest context (tokens per sequence, input + output) that fits at ``confidence``
    with the given batch size. 0 when nothing fits; capped at :data:`MAX_CONTEXT_SEARCH`."""
    return _max_search(est, model, "context", gpu_memory_gib, confidence, gpu_memory_utilization,
                            workload, MAX_CONTEXT_SEARCH)

def kv_pool_tokens(est, model, *, gpu_memory_gib, gpu_memory_utilization=None, alpha=0.10, **workload):
    """vLLM's KV pool in tokens per engine for a ``gpu_memory_utilization``, with interval.

    ``pool = u G - non_kv`` GiB per GPU (vLLM 0.20+: ``- cuda_graph`` too, which it subtracts
    before sizing), divided by the per-GPU KV bytes per token and rounded down to whole blocks. The ``1 - alpha`` interval comes from the non-KV
    interval (its upper end gives the lower pool).

    Returns
    -------
    (tokens, lower, upper) : tuple of int (or arrays)
    """
    return _pool_query(est, model, "tokens", gpu_memory_gib, gpu_memory_utilization, alpha, workload)


def kv_pool_concurrency(est, model, *, gpu_memory_gib, gpu_memory_utilization=None, alpha=0.10, **workload):
    """vLLM's "Maximum concurrency for N tokens per request" (N = ``max_model_len``), with interval.

    The pool (as in :func:`kv_pool_tokens`) over what one ``max_model_len`` request takes:
    whole blocks of every layer, except that under vLLM's hybrid manager a sliding-window
    layer group holds only its window plus the in-flight tokens
    (:func:`fitting.physics.vllm.vllm_max_concurrency`).

    Returns
    -------
    (concurrency, lower, upper) : tuple of float (or arrays), rounded to 0.01 as vLLM prints
    """
    return _pool_query(est, model, "concurrency", gpu_memory_gib, gpu_memory_utilization, alpha, workload)


def _hybrid_layout(est, arch, s):
    """vLLM's layer-group layout of a full + sliding-window model (None: one uniform pool)."""
    if est.framework != "vllm" or np.ndim(s["tp"]) or not arch.num_sliding_layers:
        return None
    return vllm_hybrid_kv_layout(arch, version=s.get("framework_version"),
                                 block_size=int(est.info.defaults.get("block_size", 16)),
                                 kv_cache_dtype=s["kv_cache_dtype"], dtype=s["dtype"], tp=int(s["tp"]))


def _pool_query(est, model, what, gpu_memory_gib, gpu_memory_utilization, alpha, workload):
    est.require_pool("kv_pool_tokens" if what == "tokens" else "kv_pool_concurrency")
    check_gpu_memory(gpu_memory_gib)
    check_alpha(alpha)
    arch, entry, name, s, _ = est.resolve_workload(model, **workload_kwargs(workload))
    u = est.utilization(gpu_memory_utilization, s)
    c = est.components(arch, s)
    G = np.asarray(gpu_memory_gib, float)
    block = float(est.info.defaults.get("block_size") or POOL_BLOCK_TOKENS.get(est.framework, 1))
    max_len = s.get("max_model_len") or arch.max_position_embeddings
    layout = _hybrid_layout(est, arch, s) if max_len and s.get("max_num_batched_tokens") else None

    rule = est.pool_rule(u, s.get("framework_version"))
    budget = est.budget_gib(c, G, rule.budget_fraction)

    def value(non_kv):
        # pool = scale x (budget_fraction x G - non-KV) (fitting.estimator.pool)
        pool_bytes = np.asarray(rule.scale, float) * np.maximum(budget - non_kv, 0.0) * _GIB
        if layout is not None:
            kw = dict(max_model_len=int(max_len), max_num_batched_tokens=int(s["max_num_batched_tokens"]),
                      version=s.get("framework_version"))
            v = (vllm_pool_tokens(layout, pool_bytes, **kw) if what == "tokens"
                 else vllm_max_concurrency(layout, pool_bytes, **kw))
        else:
            t = np.floor(pool_bytes / (c["kvbpt"] * block)) * block
            v = t if what == "tokens" else t / (np.ceil(float(max_len) / block) * block)
        if what == "tokens":
            v = np.asarray(v)
            return v.astype(np.int64) if np.ndim(v) else int(v)
        v = np.round(np.asarray(v, float), 2)
        return v if np.ndim(v) else float(v)

    nk = c["budget_non_kv"]  # vLLM 0.20+: non-KV + the CUDA graphs, all inside u G
    return value(nk.median), value(nk.quantile(1 - alpha / 2)), value(nk.quantile(alpha / 2))

def min_gpu_memory_utilization(est, model, *, gpu_memory_gib, confidence=0.95, **workload):
    """Smallest vLLM ``gpu_memory_utilization`` (to 0.001, rounded up) whose KV pool holds
    the workload with probability >= ``confidence``: the ``confidence`` quantile of
    ``non_kv + kv`` over ``G``. None (NaN in arrays) when more than the whole GPU is needed.
    """
    est.require_pool("min_gpu_memory_utilization")
    check_gpu_memory(gpu_memory_gib)
    check_probability(confidence, "confidence")
    arch, entry, name, s, _ = est.resolve_workload(model, **workload_kwargs(workload))
    c = est.components(arch, s)
    G = np.asarray(gpu_memory_gib, float)
    rule = est.pool_rule(1.0, s.get("framework_version"))
    need = c["budget_needed"].quantile(confidence)
    if rule.kind == "static":
        u = np.ceil(need / G * 1000.0 - 1e-9) / 1000.0
        u = np.where(u > 1.0, np.nan, u)
    else:  # the setting enters the budget and the scale (fitting.estimator.pool.PoolRule.min_fraction)
        u = rule.min_fraction(c["budget_non_kv"].quantile(confidence), c["kv"], G)
    if c.get("extensible_margin") is not None:  # vLLM 0.34: never more than G - margin, whatever u
        u = np.where(need > G - c["extensible_margin"], np.nan, u)
    if np.ndim(u) == 0:
        return None if math.isnan(float(u)) else float(u)
    return u
