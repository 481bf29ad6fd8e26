"""Facts about each inference framework that the models and the estimator need.

Defaults are the frameworks' own documented defaults; whoever uses one says so in its
output (the estimator lists every default it applied).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

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
        "SGLang: non-KV footprint per GPU = memory in use after weight load (\"Load weight end "
        "... mem usage\") plus what is not the KV pool.",
        {"mem_fraction_static": 0.88},
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
