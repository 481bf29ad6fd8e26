"""The answer ``python -m fitting.estimate`` prints: a prediction plus every inverse query for a
GPU, assembled into one JSON-ready dict with units and the defaults that were applied."""

from __future__ import annotations

import math

from fitting.data.frameworks import VLLM_NEWEST_KNOWN, sglang_default_mem_fraction_static, vllm_defaults
from fitting.data.gpus import find_gpu, gpu_info, gpu_interconnect
from fitting.estimator.inputs import (
    check_gpu_memory,
    check_probability,
    resolve_model_arg,
    settings_to_workload,
    workload_kwargs,
)
from fitting.estimator.queries import MAX_BATCH_SEARCH
from fitting.estimator.pool import ENGINE_TOKEN_BUDGET_DEFAULT, EXTENSIBLE_MARGIN_FLOOR_GIB, \
    EXTENSIBLE_MARGIN_FRACTION
from fitting.physics.tgi import launcher_defaults as tgi_launcher_defaults
from fitting.physics import sglang as sglang_physics
from fitting.physics.quantization import dtype_bytes
from fitting.physics.towers import max_image_tokens
from fitting.physics.vllm import COLD_COMPILE_EXCESS_MAX_GIB, cold_compile_in_profile_window, graphs_in_pool_budget, \
    parse_version

__all__ = ["answer"]


def answer(est, model, *, gpu=None, gpu_memory_gib=None, gpu_memory_utilization=None, confidence=0.95,
           alpha=0.10, **workload) -> dict:
    """Everything ``python -m fitting.estimate`` reports, as one JSON-ready dict.

    Keys (GiB per GPU unless named): ``framework, model, params_version, weights_gib,
    activations_gib, overhead_gib, non_kv_gib, non_kv_lower_gib, non_kv_upper_gib,
    cuda_graph_gib, kv_cache_gib, kv_bytes_per_token`` (bytes per token per GPU),
    ``total_gib, total_lower_gib, total_upper_gib, total_all_gpus_gib, alpha, warnings``;
    with a GPU also ``gpu_memory_gib, fit_probability, max_batch_size, max_context_len``
    and for vLLM and SGLang ``kv_pool_tokens, kv_pool_tokens_lower, kv_pool_tokens_upper``
    (tokens per engine), ``min_gpu_memory_utilization`` (the smallest static fraction:
    ``static_fraction_setting`` names it) and the engine-start answers; plus ``settings``,
    ``defaults_applied``, ``units`` and the overhead/CUDA-graph interval bounds.
    """
    gpu_default_note = {}
    has_gpu = gpu is not None or gpu_memory_gib is not None
    if est.framework == "vllm" and has_gpu and (workload.get("batch_size") is None
                                                or workload.get("max_num_batched_tokens") is None):
        # vLLM's own defaults depend on the GPU's memory tier: apply the GPU's and say so
        g_name = gpu_info(gpu).name if gpu is not None else None
        g_mem = gpu_memory_gib if gpu_memory_gib is not None else gpu_info(gpu).usable_gib
        arch = resolve_model_arg(model)[0]
        d = vllm_defaults(workload.get("framework_version") or VLLM_NEWEST_KNOWN, gpu_name=g_name, gpu_memory_gib=g_mem,
                          max_model_len=workload.get("max_model_len") or arch.max_position_embeddings)
        if workload.get("batch_size") is None:
            workload = dict(workload, batch_size=d["max_num_seqs"])
            gpu_default_note["batch_size"] = f"{d['max_num_seqs']} (vLLM's max_num_seqs default on this GPU)"
        if workload.get("max_num_batched_tokens") is None and d["max_num_batched_tokens"] is not None:
            workload = dict(workload, max_num_batched_tokens=d["max_num_batched_tokens"])
            gpu_default_note["max_num_batched_tokens"] = f"{d['max_num_batched_tokens']} ({d['rule']})"
    if est.framework == "tgi" and workload.get("max_num_batched_tokens") is None:
        # the launcher's max_batch_prefill_tokens for the release: the warm-up prefill's size
        arch = resolve_model_arg(model)[0]
        d = tgi_launcher_defaults(arch.max_position_embeddings, workload.get("framework_version"),
                                  model_type=getattr(arch, "model_type", None))
        workload = dict(workload, max_num_batched_tokens=d["max_batch_prefill_tokens"])
        gpu_default_note["max_num_batched_tokens"] = f"{d['max_batch_prefill_tokens']} ({d['rule']})"
        if d["max_total_tokens"] is not None and workload.get("max_model_len") is None:
            # 2.x launchers cap a request at min(context, 4096) tokens unless told otherwise
            workload = dict(workload, max_model_len=d["max_total_tokens"])
            gpu_default_note["max_model_len"] = f"{d['max_total_tokens']} (the launcher's max_total_tokens)"
    if est.framework in ENGINE_TOKEN_BUDGET_DEFAULT and workload.get("max_num_batched_tokens") is None:
        # the activation peak in the non-KV memory is that of the engine's own prefill before the pool
        # is sized, not of the workload's context
        mbt, why = ENGINE_TOKEN_BUDGET_DEFAULT[est.framework]
        workload = dict(workload, max_num_batched_tokens=mbt)
        gpu_default_note["max_num_batched_tokens"] = f"{mbt} ({why})"
    if est.framework == "vllm" and gpu is not None and workload.get("interconnect") is None:
        fabric = gpu_interconnect(gpu)
        if fabric is not None:
            workload = dict(workload, interconnect=fabric)
            gpu_default_note["interconnect"] = f"{fabric} (how {gpu_info(gpu).name} cards are usually connected)"
    pred = est.predict(model, alpha=alpha, **workload_kwargs(workload))
    out = pred.to_dict()
    if est.framework == "vllm":
        arch = resolve_model_arg(model)[0]
        towers = (getattr(arch, "extra", None) or {}).get("multimodal_towers")
        if towers:
            tower = pred.settings.get("vision_tower_gib") or pred.settings.get("unmodelled_weights_gib")
            weights_note = (f"the weights include its {tower:.2f} GiB tower (less its share under tp)" if tower else
                            "the tower's weights are not modelled either (only the language model's are counted)")
            image_tokens = max_image_tokens(arch)
            dummy = (f" (its largest image, {image_tokens:,} tokens, at least one per profile run; "
                     "--mm-processor-kwargs max_pixels or --limit-mm-per-prompt shrink it)" if image_tokens else "")
            out.setdefault("warnings", [])
            out["warnings"] = list(out["warnings"]) + [
                f"multimodal model ({', '.join(towers)}): vLLM's profile run also encodes dummy images/audio through "
                f"the tower{dummy}; those activations are not modelled and no multimodal start is in the fit (a "
                "Qwen2.5-VL-3B log printed 4.06 GiB of activation peak against 2.64 GiB of language-model physics): "
                f"the non-KV memory may be higher and the KV pool smaller than shown; {weights_note}; served with "
                "--language-model-only (vLLM 0.2x+), no tower is built: subtract it and these figures apply"]
    out["defaults_applied"].update(gpu_default_note)
    out.pop("fit_probability")
    out["confidence"] = confidence
    out["kv_cache_mode"] = est.kv_cache_mode  # "pool": preallocated (vLLM & co.), "growing": allocated per request
    warnings = list(out["warnings"])
    knob = est.static_fraction_setting
    if gpu_memory_utilization is not None and knob is None:
        warnings.append(f"gpu_memory_utilization / mem_fraction_static / cuda_memory_fraction / "
                        f"free_gpu_memory_fraction apply to engines that preallocate a KV pool; ignored for "
                        f"{est.framework}")
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
            if info.vendor != "NVIDIA":
                article = "an" if info.vendor[:1].upper() in "AEIOU" else "a"
                warnings.append(f"{info.name} is {article} {info.vendor} GPU: every profile this fit has seen ran on NVIDIA "
                                f"GPUs; the {info.vendor} build of {est.framework} (its runtime, allocator and "
                                "kernels) is not validated here")
        else:
            out["gpu"] = gpu
            out["gpu_memory_source"] = "given"
        check_gpu_memory(gpu_memory_gib)
        out["gpu_memory_gib"] = float(gpu_memory_gib)
        if est.non_torch is not None:
            nt = est.non_torch
            out["non_torch_gib"] = est.non_torch_gib
            out["non_torch_source"] = (f"memory outside PyTorch's allocator (CUDA context, library handles) "
                                       f"measured on {nt['gpu_name']}: median of NVML-used minus reserved over "
                                       f"{nt['n_pairs']} paired profiles, SE {nt['se_gib']:.4f} GiB")
            measured_on = find_gpu(nt["gpu_name"])
            if gpu is None or measured_on is None or gpu_info(gpu).name != measured_on.name:
                warnings.append(f"the non-torch memory added to fit questions ({est.non_torch_gib:.2f} GiB) was "
                                f"measured on {nt['gpu_name']}; another GPU or CUDA version holds a different amount")
        q = dict(workload_kwargs(workload))
        q.update(settings_to_workload(pred.settings))
        u_note = None
        if est.framework == "sglang" and gpu_memory_utilization is None:
            # SGLang derives its default from the GPU's memory, tp and pp
            d = sglang_default_mem_fraction_static(gpu_memory_gib, tp=int(q.get("tp") or 1), pp=int(q.get("pp") or 1))
            gpu_memory_utilization = d["mem_fraction_static"]
            u_note = (f"{gpu_memory_utilization} (SGLang's default for {gpu_memory_gib:g} GiB, tp={q.get('tp') or 1}: "
                      f"{d['reserved_mib']:g} MiB reserved for activations and CUDA graphs; the server_args line "
                      "of a start prints the value it used)")
        u = est.utilization(gpu_memory_utilization, pred.settings)
        if est.framework == "sglang":
            reserve = _sglang_reserve(model, q, out.get("gpu"), gpu_memory_gib, float(u))
            out["sglang_reserve"] = reserve
            if reserve["needed_upper_gib"] > reserve["reserve_gib"]:
                warnings.append(
                    f"SGLang may run out of memory after sizing its pool: it needs about {reserve['needed_gib']:.2f} "
                    f"GiB [{reserve['needed_lower_gib']:.2f}, {reserve['needed_upper_gib']:.2f}] for its attention "
                    f"workspaces, CUDA graphs and first prefill, and mem_fraction_static {float(u):g} leaves "
                    f"{reserve['reserve_gib']:.2f} GiB: lower it to {reserve['max_mem_fraction_static']} or less, or "
                    "lower --cuda-graph-max-bs / --chunked-prefill-size")
        if knob is not None:
            out["gpu_memory_utilization"] = float(u)
            out["static_fraction_setting"] = knob
            # vLLM 0.20+ subtracts its profiled CUDA-graph memory before sizing the pool
            out["cuda_graph_in_budget"] = bool(out.get("cuda_graph_gib") is not None and est.framework == "vllm"
                                               and graphs_in_pool_budget(pred.settings.get("framework_version")))
            if u_note is not None or gpu_memory_utilization is None:
                if u_note is None and est.framework == "vllm":
                    u_note = (f"{u} (vLLM {pred.settings.get('framework_version')}'s default: 0.9 to 0.19, 0.92 from "
                              "0.20, 1.0 from 0.34 with the extensible KV cache)")
                out["defaults_applied"][knob] = u_note or f"{u} ({est.framework} default)"
            rule = est.pool_rule(u, pred.settings.get("framework_version"))
            out["pool_budget_fraction"] = float(rule.budget_fraction)
            out["pool_scale"] = float(rule.scale)
            out["pool_rule"] = rule.note or f"pool = {knob} x G - non-KV"
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
        if mpe and out["max_context_len"] > mpe and knob is None:
            warnings.append(f"memory allows {out['max_context_len']} tokens per sequence, more than the model's "
                            f"max_position_embeddings {mpe}")
        if knob is not None:
            t, tl, tu = est.kv_pool_tokens(model, gpu_memory_gib=gpu_memory_gib, gpu_memory_utilization=u,
                                            alpha=alpha, **q)
            out["kv_pool_tokens"], out["kv_pool_tokens_lower"], out["kv_pool_tokens_upper"] = t, tl, tu
            out.update(_engine_start(est, model, out, q, gpu_memory_gib, u, confidence))
            if est.framework == "vllm" and cold_compile_in_profile_window(
                    pred.settings.get("framework_version"), enforce_eager=bool(pred.settings.get("enforce_eager")),
                    compile_cache="cold"):
                out["first_start_cold_compile"] = _cold_compile_start(
                    est, model, q, gpu_memory_gib, float(u), alpha, version=pred.settings.get("framework_version"),
                    activations_gib=out.get("activations_gib"))
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
                    "max_concurrency*": "requests (sequences) at once",
                    "max_model_len_that_starts": "tokens per sequence",
                    "kv_bytes_per_token": "bytes per token per GPU",
                    "kv_pool_tokens*": "tokens per engine (vLLM 'GPU KV cache size', SGLang 'max_total_num_tokens', "
                                       "TGI 'max batch total tokens', TensorRT-LLM 'max tokens in paged KV cache')",
                    "fit_probability": "probability (null where uncalibrated: see fit_probability_status)", "max_context_len": "tokens per sequence"}
    return out


def _engine_start(est, model, out, q, gpu_memory_gib, u, confidence) -> dict:
    """The questions a user of a preallocating engine asks: does it start (non-KV within
    ``u G`` and one ``max_model_len`` sequence in the pool; for SGLang one token), how many requests of
    ``max_model_len`` tokens the pool holds (vLLM's own "Maximum concurrency"), the largest
    ``max_model_len`` that starts and the smallest ``gpu_memory_utilization`` that starts."""
    max_len = q.get("max_model_len") or resolve_model_arg(model)[0].max_position_embeddings
    # vLLM refuses to start unless one max_model_len sequence fits in the pool
    # (kv_cache_utils.check_enough_kv_cache_memory); SGLang starts with any pool of at least one
    # token and caps a request's input at the pool (model_runner: "Not enough memory" only at
    # max_total_num_tokens <= 0; scheduler max_req_input_len = min(context_len, pool) - 1)
    start_len = max_len if est.framework == "vllm" else 1
    start = dict(q, concurrency=1, input_len=start_len, output_len=0, max_model_len=max_len)
    fitted = est.status == "fitted"
    p_start = est.fit_probability(model, gpu_memory_gib=gpu_memory_gib, gpu_memory_utilization=u, **start)
    ans = {"max_model_len": int(max_len),
           "engine_start_probability": float(p_start) if fitted else None,
           "engine_starts": (bool(p_start >= confidence) if fitted else None)}
    # vLLM prints "Maximum concurrency for N tokens per request: X.XXx": the pool over one request's
    # blocks (a sliding-window group of a hybrid model holds only its window + in-flight tokens)
    conc = est.kv_pool_concurrency(model, gpu_memory_gib=gpu_memory_gib, gpu_memory_utilization=u,
                                   alpha=out.get("alpha", 0.10),
                                   **dict(q, concurrency=1, input_len=None, output_len=None, max_model_len=max_len))
    for suffix, value in zip(("", "_lower", "_upper"), conc):
        ans[f"max_concurrency_at_max_model_len{suffix}"] = value
    one = dict(q, concurrency=1, input_len=None, output_len=None, max_model_len=None)
    allowed = int(est.max_context_len(model, gpu_memory_gib=gpu_memory_gib, confidence=confidence,
                                      gpu_memory_utilization=u, **one))
    mpe = resolve_model_arg(model)[0].max_position_embeddings
    # vLLM refuses a max_model_len above the model's own limit (without VLLM_ALLOW_LONG_MAX_MODEL_LEN)
    ans["max_model_len_that_starts"] = min(allowed, int(mpe)) if mpe else allowed
    ans["max_model_len_memory_allows"] = allowed
    ans["min_gpu_memory_utilization_to_start"] = est.min_gpu_memory_utilization(
        model, gpu_memory_gib=gpu_memory_gib, confidence=confidence, **start)
    per_seq = (q.get("input_len") or 0) + (q.get("output_len") or 0)
    ans["workload"] = {"concurrency": int(q.get("concurrency") or 1), "tokens_per_request": int(per_seq),
                       "fits_in_pool_probability": float(out["fit_probability"]) if fitted else None}
    return ans


def _sglang_reserve(model, q, gpu_name, gpu_memory_gib, mem_fraction_static) -> dict:
    """What SGLang allocates after its pool against what ``mem_fraction_static`` leaves
    (:mod:`fitting.physics.sglang`), GiB per GPU; settings from SGLang's tier defaults where not given."""
    arch = resolve_model_arg(model)[0]
    tp, pp = int(q.get("tp") or 1), int(q.get("pp") or 1)
    version = q.get("framework_version")
    tiers = sglang_default_mem_fraction_static(gpu_memory_gib, tp=tp, pp=pp,
                                               chunked_prefill_size=q.get("max_num_batched_tokens"))
    cps, max_bs = int(tiers["chunked_prefill_size"]), int(tiers["cuda_graph_max_bs"])
    eager = bool(q.get("enforce_eager"))
    archs = sglang_physics.architecture_names(arch)
    multimodal = bool((arch.extra or {}).get("multimodal_towers"))
    backend = sglang_physics.default_attention_backend(gpu_name, version, mla=arch.is_mla, architectures=archs)
    piecewise = None if eager else sglang_physics.piecewise_max_tokens_default(
        version, chunked_prefill_size=cps, mla=arch.is_mla, multimodal=multimodal, pp=pp)
    dtype = str(q.get("dtype") or "bfloat16")
    parts = sglang_physics.reserve_needed_bytes(
        arch, chunked_prefill_size=cps, cuda_graph_max_bs=None if eager else max_bs, tp=tp,
        dtype_bytes=dtype_bytes(dtype), backend=backend,
        context_len=q.get("max_model_len") or arch.max_position_embeddings, version=version,
        piecewise_max_tokens=piecewise, architectures=archs, multimodal_flashinfer=multimodal and backend == "flashinfer",
        num_wrappers=2 if arch.sliding_window else 1)
    gib = float(2**30)
    f = sglang_physics.GRAPH_ERROR_FACTOR
    fixed = (parts.attn_init + parts.runtime_peak) / gib
    need, graphs = parts.total / gib, parts.graphs / gib
    upper = fixed + graphs * f
    reserve = (1.0 - mem_fraction_static) * gpu_memory_gib
    v = version or ".".join(map(str, sglang_physics.SGLANG_RESERVE_VERIFIED))
    return {
        "reserve_gib": reserve, "needed_gib": need, "needed_lower_gib": fixed + graphs / f, "needed_upper_gib": upper,
        "parts_gib": {"attention_setup": parts.attn_init / gib, "decode_cuda_graphs": parts.decode_graphs / gib,
                      "piecewise_cuda_graphs": parts.piecewise_graphs / gib, "runtime_peak": parts.runtime_peak / gib},
        "max_mem_fraction_static": (None if upper >= gpu_memory_gib
                                    else math.floor((1.0 - upper / gpu_memory_gib) * 1000.0) / 1000.0),
        "attention_backend": backend, "cuda_graph_max_bs": None if eager else max_bs, "chunked_prefill_size": cps,
        "piecewise_cuda_graph_max_tokens": piecewise, "version": v,
        "source": (f"fitting.physics.sglang (SGLang {v}'s graph capture and attention set-up; the CUDA-graph terms "
                   f"carry a x{f:g} band, the widest ratio seen against six logged starts; the reserve is "
                   "(1 - mem_fraction_static) x G, about 0.1 GiB above SGLang's own (it applies the fraction to the "
                   "memory free before the weights load))"),
    }


def _cold_compile_start(est, model, q, gpu_memory_gib, u, alpha, *, version=None, activations_gib=None) -> dict:
    """vLLM's first start with an empty torch.compile cache: the compiler's temporaries count as
    activation memory (:func:`fitting.physics.vllm.cold_compile_in_profile_window`), so the pool
    is smaller by up to :data:`~fitting.physics.vllm.COLD_COMPILE_EXCESS_MAX_GIB` per GPU (the
    largest our cold-start profiles show) until the cache is warm. With 0.34's extensible KV cache
    the profiled peak also sets the margin kept free, ``max(1 GiB, 0.75 x peak)``
    (``v1/worker/gpu_worker.py`` seeds ``reserved_headroom_bytes`` with it;
    ``extensible_kv_cache.py::measure_kv_cache_bytes``), which grows with the excess."""
    excess = COLD_COMPILE_EXCESS_MAX_GIB
    lost = excess
    v = parse_version(version)
    if v is not None and v >= (0, 34) and activations_gib is not None:
        a = float(activations_gib)
        lost += (max(EXTENSIBLE_MARGIN_FLOOR_GIB, EXTENSIBLE_MARGIN_FRACTION * (a + excess))
                 - max(EXTENSIBLE_MARGIN_FLOOR_GIB, EXTENSIBLE_MARGIN_FRACTION * a))
    # the pool's budget u G (or G - margin with the extensible KV cache) less what is lost: as a
    # GPU with lost / u GiB less memory
    g_cold = float(gpu_memory_gib) - lost / max(float(u), 1e-9)
    tokens = est.kv_pool_tokens(model, gpu_memory_gib=g_cold, gpu_memory_utilization=u,
                                alpha=alpha, **q)[0] if g_cold > 0 else 0
    # does the first start hold one max_model_len sequence (vLLM's start check) with that loss?
    max_len = q.get("max_model_len") or resolve_model_arg(model)[0].max_position_embeddings
    start = dict(q, concurrency=1, input_len=max_len, output_len=0, max_model_len=max_len)
    p_start = (float(est.fit_probability(model, gpu_memory_gib=g_cold, gpu_memory_utilization=u, **start))
               if g_cold > 0 and est.status == "fitted" else (0.0 if g_cold <= 0 else None))
    return {"excess_upper_gib": excess, "pool_loss_gib": lost, "kv_pool_tokens": int(max(tokens, 0)),
            "engine_start_probability": p_start,
            "note": ("a first start with an empty torch.compile cache counts the compiler's temporaries as "
                     f"activation memory (vllm#54122): up to {excess:g} GiB per GPU in our profiles, so the pool "
                     "is that much smaller until the cache (VLLM_CACHE_ROOT, ~/.cache/vllm) is kept between starts")}
