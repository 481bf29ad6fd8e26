"""Facts about each inference framework that the models and the estimator need.

Defaults are the frameworks' own documented defaults; whoever uses one says so in its
output (the estimator lists every default it applied).
"""

from __future__ import annotations

import math

import re
from dataclasses import dataclass, field

from fitting.physics.vllm import VLLM_NEWEST_VERIFIED, default_engine, parse_version

FRAMEWORKS = ("vllm", "sglang", "trtllm", "tgi", "llamacpp", "transformers", "pytorch")


@dataclass(frozen=True)
class FrameworkInfo:
    """Static facts about one framework.

    Attributes
    ----------
    name : str
        Framework family id as used in profiles and coefficient files.
    kv_cache_mode : {"pool", "growing"}
        ``pool``: the KV cache is preallocated from a memory fraction (what nvidia-smi
        shows is that fraction, whatever the model). ``growing``: sized by the workload.
    observed_quantity : str
        What the fitted response is, per GPU, in GiB.
    defaults : dict
        The framework's own defaults for settings a query may omit.
    """

    name: str
    kv_cache_mode: str
    observed_quantity: str
    description: str
    defaults: dict = field(default_factory=dict)


FRAMEWORK_INFO = {
    "vllm": FrameworkInfo(
        "vllm", "pool", "non_kv_gib",
        "vLLM: non-KV footprint per GPU = weights + non-torch memory + activation peak "
        "(v0.6.4 form: peak_torch + non_torch). CUDA graph memory is a separate term.",
        # vLLM V1 EngineArgs defaults (max_num_batched_tokens is 8192 for the offline LLM
        # class and 2048 for older chunked-prefill V0 servers; we use V1's).
        {"max_num_seqs": 256, "max_num_batched_tokens": 8192, "gpu_memory_utilization": 0.9,
         "block_size": 16},
    ),
    "sglang": FrameworkInfo(
        "sglang", "pool", "non_kv_gib",
        "SGLang: non-KV part of the static budget per GPU = mem_fraction_static x G - KV pool "
        "(what loading the weights used, plus mem_fraction_static x the memory in use before "
        "loading: CUDA context, NCCL); activations and CUDA graphs use the rest of the GPU.",
        # mem_fraction_static: SGLang's fallback when the GPU memory is unknown (0.88 up to
        # 0.5.x); with a GPU the estimator applies sglang_default_mem_fraction_static
        {"mem_fraction_static": 0.88, "block_size": 1},
    ),
    "trtllm": FrameworkInfo(
        "trtllm", "pool", "non_kv_gib",
        "TensorRT-LLM: engine weights + execution-context (activation) memory per GPU.",
        {"free_gpu_memory_fraction": 0.9},
    ),
    "tgi": FrameworkInfo(
        "tgi", "pool", "non_kv_gib",
        "TGI: non-KV footprint after warmup per GPU.",
        {"cuda_memory_fraction": 1.0},
    ),
    "llamacpp": FrameworkInfo(
        "llamacpp", "growing", "peak_gib",
        "llama.cpp: model buffers + KV buffer + compute buffers per device.",
        {"n_batch": 2048, "n_ubatch": 512},
    ),
    "transformers": FrameworkInfo(
        "transformers", "growing", "peak_gib",
        "Hugging Face transformers generate(): peak memory (torch max_memory_allocated, or "
        "NVML / nvidia-smi where that is what was measured) per GPU.",
        {},
    ),
    "pytorch": FrameworkInfo(
        "pytorch", "growing", "peak_gib",
        "Plain PyTorch generation scripts (torchao gpt-fast): peak memory per GPU.",
        {},
    ),
}


def framework_info(name: str) -> FrameworkInfo:
    """Return the :class:`FrameworkInfo` of ``name`` or raise a clear ``ValueError``."""
    try:
        return FRAMEWORK_INFO[name]
    except KeyError:
        raise ValueError(f"unknown framework {name!r}; expected one of {', '.join(FRAMEWORKS)}") from None


def _version_tuple(version) -> tuple | None:
    m = re.match(r"\s*v?(\d+)\.(\d+)", str(version or ""))
    return (int(m.group(1)), int(m.group(2))) if m else None


def vllm_default_max_num_seqs(gpu_memory_gib=None, gpu_name=None, engine=None, version=None) -> int:
    """vLLM's own default ``max_num_seqs`` for a start-up that did not set it.

    vLLM V1 (``EngineArgs._set_default_args``, from about v0.9) raises the default from
    256 to 1024 on GPUs with at least 70 GiB that are not A100s; V0 and older V1 builds use
    256. Where the GPU's memory is unknown the conservative 256 is returned.

    Parameters
    ----------
    gpu_memory_gib : float, optional
        Total memory of one GPU in GiB.
    gpu_name : str, optional
    engine : {"v0", "v1"}, optional
    version : str, optional
        vLLM version as printed, e.g. ``"0.10.1"``.

    Returns
    -------
    int
    """
    if engine == "v0":
        return 256
    v = _version_tuple(version)
    if v is not None and v < (0, 9):
        return 256
    try:
        big = gpu_memory_gib is not None and float(gpu_memory_gib) >= 70.0
    except (TypeError, ValueError):
        big = False
    if big and "a100" not in str(gpu_name or "").lower():
        return 1024
    return 256


#: Newest vLLM release whose defaults :func:`vllm_defaults` was checked against (its source).
VLLM_NEWEST_KNOWN = ".".join(str(x) for x in VLLM_NEWEST_VERIFIED)

_ENTRY_POINTS = {"serve": "serve", "openai": "serve", "api_server": "serve", "server": "serve",
                 "llm": "llm", "llm_class": "llm", "offline": "llm"}


def _gpu_tier(version, gpu_name, gpu_memory_gib) -> tuple[str, str]:
    """(tier, why) of vLLM V1's batch defaults: ``"h100_name"``, ``"big"``, ``"huge"``, ``"small"``, ``"unknown"``."""
    v = parse_version(version)
    name = str(gpu_name or "").lower()
    try:
        mem = float(gpu_memory_gib) if gpu_memory_gib is not None else None
    except (TypeError, ValueError):
        mem = None
    if v is not None and v < (0, 8, 5):
        # 0.8.0-0.8.4: larger token budget only for GPUs named H100/H200
        if not name:
            return "unknown", "GPU name unknown"
        big = "h100" in name or "h200" in name
        return ("h100_name" if big else "small"), "GPU name contains h100/h200" if big else "GPU not H100/H200"
    if mem is None:
        return "unknown", "GPU memory unknown"
    if mem >= 160 and (v is None or v >= (0, 28, 0)):
        return "huge", f"{mem:g} GiB >= 160 GiB (0.28+)"
    if mem >= 70:
        if "a100" in name and (v is None or v >= (0, 9, 0)):
            return "small", "A100 excluded from the >= 70 GiB defaults (0.9+)"
        if ("gb10" in name or "spark" in name) and (v is None or v >= (0, 33, 0)):
            return "small", "GB10 excluded from the >= 70 GiB defaults (0.33+)"
        return "big", f"{mem:g} GiB >= 70 GiB"
    return "small", f"{mem:g} GiB < 70 GiB"


def vllm_defaults(version=None, *, engine: str | None = None, gpu_name: str | None = None,
                  gpu_memory_gib: float | None = None, entry_point: str = "serve", max_model_len: int | None = None,
                  multimodal: bool = False, enable_chunked_prefill: bool | None = None,
                  sliding_window: bool = False) -> dict:
    """vLLM's own defaults for a start-up that set none of them, by version, engine, GPU and entry point.

    Parameters
    ----------
    version : str, optional
        vLLM version as printed; None = the newest known rules (:data:`VLLM_NEWEST_KNOWN`).
    engine : {"v0", "v1"}, optional
        Default: V1 from 0.8.0 (:func:`fitting.physics.vllm.default_engine`).
    gpu_name : str, optional
        As printed / as in the GPU table (``"NVIDIA H100 80GB HBM3"``).
    gpu_memory_gib : float, optional
        Total memory of one GPU (GiB, as the driver reports it).
    entry_point : {"serve", "llm"}, default "serve"
        ``vllm serve`` / OpenAI API server or the offline ``LLM`` class (UsageContext).
    max_model_len : int, optional
        Needed by V0's token budget without chunked prefill and by the caps below.
    multimodal : bool
        V0: the token budget is at least 5120 (``_MULTIMODAL_MODEL_MAX_NUM_BATCHED_TOKENS``).
    enable_chunked_prefill : bool, optional
        V0: default off, on for ``max_model_len > 32768`` (0.5.5+, CUDA, no sliding window,
        text-only); V1: always on for generative models.
    sliding_window : bool
        V0: a sliding-window model keeps chunked prefill off.

    Returns
    -------
    dict
        ``max_num_seqs``, ``max_num_batched_tokens`` (None when ``max_model_len`` is needed
        and missing), ``gpu_memory_utilization`` (:func:`vllm_default_utilization`: 0.9,
        0.92 from 0.20, 1.0 from 0.34), ``block_size`` (16),
        ``enable_chunked_prefill``, ``engine``, ``rule`` (which rule applied, for printing).

    Notes
    -----
    Read in ``vllm/engine/arg_utils.py`` (``EngineArgs._set_default_args*``,
    ``get_batch_defaults``) and ``SchedulerConfig`` (``vllm/config.py``,
    ``vllm/config/scheduler.py``):

    * V0: ``max_num_seqs`` 256; token budget with chunked prefill 512 (up to 0.6.4) / 2048
      (0.6.5+), without it ``max(max_model_len, 2048)``; multimodal at least 5120.
    * V1 0.8.0-0.8.4: ``max_num_seqs`` 1024 on every GPU; budget 16384 (LLM) / 8192 (serve)
      on GPUs named H100/H200, else 8192 / 2048.
    * V1 0.8.5: by memory: >= 70 GiB -> 1024 and 16384 / 8192, else 256 and 8192 / 2048.
    * V1 0.9.0+: the same with A100s excluded from the >= 70 GiB tier; 0.28+: >= 160 GiB ->
      1024 and 16384 for both entry points; 0.33+: GB10 excluded.
    * V1 0.12+ (``_set_default_max_num_seqs_and_batched_tokens_args``), when the defaults
      apply: budget ``min(max_num_seqs * max_model_len, budget)``, then ``max_num_seqs =
      min(max_num_seqs, budget)`` (the first cap is in ``SchedulerConfig`` from 0.10.2).
    * ``--performance-mode throughput`` (0.17+) doubles both; not modelled.

    Examples
    --------
    >>> d = vllm_defaults("0.19.0", gpu_name="NVIDIA H100 80GB HBM3", gpu_memory_gib=79.19)
    >>> d["max_num_seqs"], d["max_num_batched_tokens"]
    (1024, 8192)
    >>> d = vllm_defaults("0.19.0", gpu_name="NVIDIA L4", gpu_memory_gib=22.0)
    >>> d["max_num_seqs"], d["max_num_batched_tokens"]
    (256, 2048)
    """
    v = parse_version(version)
    eng = engine or default_engine(v) or "v1"
    eng = "v0" if str(eng).lower() == "v0" else "v1"
    ep = _ENTRY_POINTS.get(str(entry_point).lower().replace("-", "_"))
    if ep is None:
        raise ValueError(f"entry_point: expected 'serve' or 'llm', got {entry_point!r}")
    vs = ".".join(map(str, v)) if v else f"unknown (newest known {VLLM_NEWEST_KNOWN})"
    out = {"gpu_memory_utilization": vllm_default_utilization(v), "block_size": 16, "engine": eng}
    if eng == "v0":
        chunked = enable_chunked_prefill
        why_chunk = "set"
        if chunked is None:
            long_ctx = max_model_len is not None and int(max_model_len) > 32768
            chunked = bool(long_ctx and (v is None or v >= (0, 5, 5)) and not sliding_window and not multimodal)
            why_chunk = "on: max_model_len > 32768" if chunked else "off (V0 default)"
        if chunked:
            mbt = 512 if (v is not None and v < (0, 6, 5)) else 2048
        else:
            mbt = max(int(max_model_len), 2048) if max_model_len is not None else None
        if multimodal and mbt is not None:
            mbt = max(mbt, 5120)
        out.update(max_num_seqs=256, max_num_batched_tokens=mbt, enable_chunked_prefill=chunked,
                   rule=f"vLLM {vs} V0: max_num_seqs 256; chunked prefill {why_chunk}; "
                        + (f"max_num_batched_tokens {mbt}" if mbt is not None
                           else "max_num_batched_tokens = max(max_model_len, 2048) needs max_model_len"))
        return out
    tier, why = _gpu_tier(v, gpu_name, gpu_memory_gib)
    if v is not None and v < (0, 8, 5):
        seqs = 1024
        mbt = {"llm": 16384, "serve": 8192}[ep] if tier == "h100_name" else {"llm": 8192, "serve": 2048}[ep]
        if tier == "unknown":
            mbt = {"llm": 8192, "serve": 2048}[ep]
    elif tier == "huge":
        seqs, mbt = 1024, 16384
    elif tier == "big":
        seqs, mbt = 1024, {"llm": 16384, "serve": 8192}[ep]
    else:
        seqs, mbt = 256, {"llm": 8192, "serve": 2048}[ep]
    chunked = True if enable_chunked_prefill is None else bool(enable_chunked_prefill)
    if not chunked and max_model_len is not None:
        mbt = max(int(max_model_len), mbt)
    if max_model_len is not None and (v is None or v >= (0, 10, 2)):
        mbt = min(seqs * int(max_model_len), mbt)
    if v is None or v >= (0, 12, 0):
        seqs = min(seqs, mbt)
    out.update(max_num_seqs=seqs, max_num_batched_tokens=mbt, enable_chunked_prefill=chunked,
               rule=f"vLLM {vs} V1, {'vllm serve' if ep == 'serve' else 'LLM class'}, GPU tier {tier} ({why}): "
                    f"max_num_seqs {seqs}, max_num_batched_tokens {mbt}")
    return out


#: Serving engines whose ``dtype="auto"`` casts float32 checkpoints to float16 (vLLM's
#: ``_get_and_verify_dtype`` "following common practice").
_AUTO_FP32_TO_FP16 = frozenset({"vllm", "sglang", "trtllm", "tgi"})


def default_dtype(arch, framework: str) -> str:
    """The activation/weight dtype a framework uses when none is stated.

    Serving engines run the checkpoint's ``torch_dtype``, float32 checkpoints as float16;
    other frameworks the checkpoint's dtype as stored. bfloat16 when the config states none.
    """
    td = str(getattr(arch, "torch_dtype", None) or "").replace("torch.", "")
    td = {"half": "float16", "float": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(td, td)
    if td not in ("bfloat16", "float16", "float32"):
        return "bfloat16"
    if td == "float32" and framework in _AUTO_FP32_TO_FP16:
        return "float16"
    return td


#: The setting that sizes a preallocating engine's static budget (weights + KV pool) as a
#: fraction of the GPU: vLLM's ``gpu_memory_utilization``, SGLang's ``mem_fraction_static``.
STATIC_FRACTION_SETTING = {"vllm": "gpu_memory_utilization", "sglang": "mem_fraction_static"}


def sglang_default_mem_fraction_static(gpu_memory_gib, *, tp=1, pp=1, chunked_prefill_size=None,
                                       cuda_graph_max_bs=None) -> dict:
    """SGLang's default ``mem_fraction_static`` for a GPU, with the settings it derives.

    Follows ``handle_gpu_memory_settings`` of SGLang 0.5.23
    (``sglang/srt/arg_groups/memory_hook.py``; ``ServerArgs._handle_gpu_memory_settings`` in
    0.5.5 has the same form): ``chunked_prefill_size`` and the decode CUDA-graph ``max_bs`` by
    memory tier (< 20, < 35, < 60, < 90, < 160 GiB and above), then ``reserved = 512 +
    1.5 x max(chunked_prefill_size, 2048) + tp x pp / 8 x 1024 + 2 x max_bs`` MiB, at least
    10240 MiB on GPUs above 60 GiB, and ``mfs = round((gpu_mem - reserved) / gpu_mem, 3)``
    with ``gpu_mem`` the device total in MiB. Not modelled: data-parallel attention,
    speculative decoding, DeepEP, the prefill CUDA graphs (8 MiB per captured size, or
    1.5 GiB for MLA) and the multimodal reduction; SGLang prints the value it used in its
    ``server_args`` line, which is what a fit uses.

    Parameters
    ----------
    gpu_memory_gib : float
        Device total (GiB) as the driver reports it.
    tp, pp : int
    chunked_prefill_size, cuda_graph_max_bs : int, optional
        As given to SGLang; None for its tier default.

    Returns
    -------
    dict
        ``mem_fraction_static``, ``chunked_prefill_size``, ``cuda_graph_max_bs``, ``reserved_mib``.

    Examples
    --------
    >>> sglang_default_mem_fraction_static(79.19)["mem_fraction_static"]  # H100 80GB, tp=1
    0.834
    """
    gpu_mem = float(gpu_memory_gib) * 1024.0
    tiers = ((20, 2048, 8, 8), (35, 4096, 48, 160), (60, 4096, 32, 160), (90, 8192, 256, 512),
             (160, 8192, 256, 512), (math.inf, 16384, 512, 512))
    for upper, cps, bs_small, bs_large in tiers:
        if gpu_mem < upper * 1024:
            break
    cps = cps if chunked_prefill_size is None else int(chunked_prefill_size)
    bs = (bs_small if tp < 4 else bs_large) if cuda_graph_max_bs is None else int(cuda_graph_max_bs)
    reserved = 512.0 + max(cps, 2048) * 1.5 + tp * pp / 8 * 1024 + bs * 2
    if gpu_mem > 60 * 1024:
        reserved = max(reserved, 10 * 1024.0)
    return {"mem_fraction_static": round((gpu_mem - reserved) / gpu_mem, 3), "chunked_prefill_size": cps,
            "cuda_graph_max_bs": bs, "reserved_mib": reserved}


def vllm_default_utilization(version=None) -> float:
    """vLLM's default ``gpu_memory_utilization`` for a version (None: the newest known).

    ``CacheConfig.gpu_memory_utilization`` (``vllm/config/cache.py``): 0.9 up to 0.19; 0.92
    from 0.20.0 (2026-04-27, with CUDA-graph memory profiling); from 0.34.0 (2026-11-16) the
    field defaults to None and ``resolved_gpu_memory_utilization`` gives 1.0 with the
    extensible KV cache (on by default on CUDA: the pool is committed after warm-up from the
    memory actually free, keeping the profiled activation peak as headroom,
    ``v1/worker/gpu_worker.py``), else 0.92. Read in the sdists of 0.16-0.22, 0.28, 0.31,
    0.33 and 0.34.

    Examples
    --------
    >>> vllm_default_utilization("0.19.0"), vllm_default_utilization("0.20.0"), vllm_default_utilization("0.34.0")
    (0.9, 0.92, 1.0)
    """
    v = parse_version(version) if not isinstance(version, tuple) else version
    if v is None:
        v = VLLM_NEWEST_VERIFIED
    if v >= (0, 34):
        return 1.0
    if v >= (0, 20):
        return 0.92
    return 0.9
