"""The answer ``python -m fitting.estimate`` prints: a prediction plus every inverse query for a
GPU, assembled into one JSON-ready dict with units and the defaults that were applied."""

from __future__ import annotations

from fitting.data.frameworks import vllm_default_max_num_seqs
from fitting.data.gpus import gpu_info
from fitting.estimator.inputs import (
    check_gpu_memory,
    check_probability,
    resolve_model_arg,
    settings_to_workload,
    workload_kwargs,
)
from fitting.estimator.queries import MAX_BATCH_SEARCH

__all__ = ["answer"]


def answer(est, model, *, gpu=None, gpu_memory_gib=None, gpu_memory_utilization=None, confidence=0.95,
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
    if (est.framework == "vllm" and workload.get("batch_size") is None
            and (gpu is not None or gpu_memory_gib is not None)):
        # vLLM's own max_num_seqs default depends on the GPU (1024 on >= 70 GiB non-A100)
        g_name = gpu_info(gpu).name if gpu is not None else None
        g_mem = gpu_memory_gib if gpu_memory_gib is not None else gpu_info(gpu).usable_gib
        workload = dict(workload, batch_size=vllm_default_max_num_seqs(g_mem, g_name, "v1"))
        gpu_default_note = (f"{workload['batch_size']} (vLLM V1 max_num_seqs default on a "
                            f"{g_mem:g} GiB {g_name or 'GPU'})")
    pred = est.predict(model, alpha=alpha, **workload_kwargs(workload))
    out = pred.to_dict()
    if gpu_default_note is not None:
        out["defaults_applied"]["batch_size"] = gpu_default_note
    out.pop("fit_probability")
    out["confidence"] = confidence
    warnings = list(out["warnings"])
    if gpu_memory_utilization is not None and est.framework != "vllm":
        warnings.append(f"gpu_memory_utilization applies to vLLM only; ignored for {est.framework}")
    if gpu is not None or gpu_memory_gib is not None:
        check_probability(confidence, "confidence")
        if gpu_memory_gib is None:
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
        check_gpu_memory(gpu_memory_gib)
        out["gpu_memory_gib"] = float(gpu_memory_gib)
        u = est.utilization(gpu_memory_utilization)
        q = dict(workload_kwargs(workload))
        q.update(settings_to_workload(pred.settings))
        if est.framework == "vllm":
            out["gpu_memory_utilization"] = float(u)
            if gpu_memory_utilization is None:
                out["defaults_applied"]["gpu_memory_utilization"] = f"{u} (vLLM default)"
        p_fit = est.fit_probability(model, gpu_memory_gib=gpu_memory_gib, gpu_memory_utilization=u, **q)
        if est.status == "fitted":
            out["fit_probability"] = p_fit
            out["fit_probability_status"] = "calibrated (fitted error model, new-model interval)"
        else:  # hand-set constants and a hand-set scale: no calibrated probability exists
            out["fit_probability"] = None
            out["fit_probability_status"] = "uncalibrated: seed-plan constants, not fitted"
        out["max_batch_size"] = est.max_batch_size(model, gpu_memory_gib=gpu_memory_gib, confidence=confidence,
                                                    gpu_memory_utilization=u, **q)
        out["max_context_len"] = est.max_context_len(model, gpu_memory_gib=gpu_memory_gib,
                                                      confidence=confidence, gpu_memory_utilization=u, **q)
        if out["max_batch_size"] >= MAX_BATCH_SEARCH:
            warnings.append(f"max_batch_size reached the search limit {MAX_BATCH_SEARCH}")
        mpe = resolve_model_arg(model)[0].max_position_embeddings
        if mpe and out["max_context_len"] > mpe:
            warnings.append(f"memory allows {out['max_context_len']} tokens per sequence, more than the model's "
                            f"max_position_embeddings {mpe}")
        if est.framework == "vllm":
            t, tl, tu = est.kv_pool_tokens(model, gpu_memory_gib=gpu_memory_gib, gpu_memory_utilization=u,
                                            alpha=alpha, **q)
            out["kv_pool_tokens"], out["kv_pool_tokens_lower"], out["kv_pool_tokens_upper"] = t, tl, tu
            umin = est.min_gpu_memory_utilization(model, gpu_memory_gib=gpu_memory_gib,
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
                    "fit_probability": "probability (null where uncalibrated: see fit_probability_status)", "max_context_len": "tokens per sequence"}
    return out
