"""How each preallocating engine turns its memory-fraction setting into a KV pool.

Every engine here sizes its pool once, at start-up, from the memory left beside its non-KV
footprint (weights, non-torch memory, the activation peak of its profile or warm-up run):

``pool = scale x (budget_fraction x G - non_kv)``  (GiB per GPU, ``G`` the GPU's memory)

==========  =====================================  ================  =========  ==========================
engine      setting (default)                      budget_fraction   scale      source
==========  =====================================  ================  =========  ==========================
vLLM        gpu_memory_utilization (by version)    u                 1          v1/worker/gpu_worker.py
SGLang      mem_fraction_static (by GPU and tp)    f                 1          model_runner.profile_max_num_token
TGI >= 3.0  CUDA_MEMORY_FRACTION (1.0)             f x wiggle        1          flash_causal_lm.py warmup()
TGI 2.x     CUDA_MEMORY_FRACTION (1.0)             f                 wiggle     flash_causal_lm.py warmup()
TRT-LLM     free_gpu_memory_fraction (0.9)         1                 f          KvCacheCreator / kvCacheManager.cpp
==========  =====================================  ================  =========  ==========================

TGI (text-generation-inference, CUDA backend): ``warmup()`` runs a prefill of the router's
warm-up batch (``max_batch_prefill_tokens``), then, without emptying the allocator's cache,
``get_free_memory(device, MEMORY_FRACTION * TGI_WIGGLE_ROOM)`` = free - (1 - f w) G, and
``num_blocks = free_adj // block_bytes + warm-up blocks`` (v3.0.0-v3.3.7, commit a04356fb);
v2.x took ``get_free_memory(device, MEMORY_FRACTION) * TGI_WIGGLE_ROOM``. ``TGI_WIGGLE_ROOM``
defaults (models/globals.py): 0.95 (2.3, 3.0), 0.90 (2.4, 3.3+), 0.93 (3.1-3.2); 2.2 hard-coded
0.95. CUDA graphs are captured after the pool, in what is left.

TensorRT-LLM: the PyTorch backend (``tensorrt_llm/_torch/pyexecutor/_util.py``,
``KvCacheCreator._cal_max_memory``) runs a dummy prefill of ``max_num_tokens``, then
``available_kv_mem = (total - peak) x free_gpu_memory_fraction`` with ``peak`` the torch peak
plus the non-torch memory (CUDA graphs are captured in the warm-up before it); the C++
executor takes ``free_gpu_memory_fraction x free memory`` after loading the engine
(``kvCacheManager.cpp``). Default fraction 0.9 (``KvCacheConfig``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fitting.data.frameworks import STATIC_FRACTION_SETTING
from fitting.physics.tgi import TGI_NEWEST_KNOWN, tgi_version, tgi_wiggle_room

__all__ = ["POOL_SETTING", "PoolRule", "pool_rule", "tgi_wiggle_room", "TGI_NEWEST_KNOWN", "POOL_LABEL",
           "ENGINE_TOKEN_BUDGET_DEFAULT", "POOL_BLOCK_TOKENS"]

#: The setting that sizes each preallocating engine's pool.
POOL_SETTING = {**STATIC_FRACTION_SETTING, "tgi": "cuda_memory_fraction", "trtllm": "free_gpu_memory_fraction"}
#: What each engine's start-up log calls the pool in tokens.
POOL_LABEL = {"vllm": "GPU KV cache size", "sglang": "max_total_num_tokens",
              "tgi": "max batch total tokens", "trtllm": "max tokens in paged KV cache"}
#: The token budget of the dummy prefill before the pool is sized (the estimator's
#: ``max_num_batched_tokens``) where the user gives none: TensorRT-LLM's ``max_num_tokens`` is
#: commonly 8192 (BuildConfig / trtllm-serve; not verified per release). TGI's comes from its
#: launcher, by release (:func:`fitting.physics.tgi.launcher_defaults`).
ENGINE_TOKEN_BUDGET_DEFAULT = {
    "trtllm": (8192, "TensorRT-LLM's usual max_num_tokens (the dummy prefill before the pool is sized)"),
}
#: Tokens per KV block where the engine's framework defaults name none: TensorRT-LLM's
#: ``tokens_per_block`` 32 (KvCacheConfig; "Number of tokens per block: 32." and the pool's
#: token count a multiple of it in the logs: 263,008 = 8,219 x 32, 860,320 = 26,885 x 32). TGI's
#: block is 1 token with its default flashinfer attention on Ampere and newer (16 paged, 256
#: flashdecoding), SGLang's page 1.
POOL_BLOCK_TOKENS = {"trtllm": 32}
#: vLLM 0.34 extensible KV cache: KV_CACHE_MARGIN_FLOOR_BYTES (1 GiB on CUDA) and
#: KV_CACHE_MARGIN_FRACTION (of the profiled activation peak), v1/worker/extensible_kv_cache.py.
EXTENSIBLE_MARGIN_FLOOR_GIB = 1.0
EXTENSIBLE_MARGIN_FRACTION = 0.75
@dataclass(frozen=True)
class PoolRule:
    """``pool = scale x (budget_fraction x G - non_kv)`` for one engine and setting.

    Attributes
    ----------
    setting : str
        The engine's own name of the fraction.
    fraction : float or ndarray
        The setting's value.
    budget_fraction, scale : float or ndarray
    kind : {"static", "tgi3", "tgi2", "free"}
    note : str
    wiggle : float
        TGI's ``TGI_WIGGLE_ROOM`` (1 for the other engines).
    """

    setting: str
    fraction: object
    budget_fraction: object
    scale: object
    kind: str
    note: str = ""
    wiggle: float = 1.0

    def min_fraction(self, non_kv_gib, kv_gib, gpu_memory_gib):
        """Smallest setting whose pool holds ``kv_gib`` beside ``non_kv_gib`` (NaN above 1)."""
        nk, kv, G = (np.asarray(x, float) for x in (non_kv_gib, kv_gib, gpu_memory_gib))
        if self.kind == "static":
            f = (nk + kv) / G
        elif self.kind == "tgi3":
            f = (nk + kv) / (G * self.wiggle)
        elif self.kind == "tgi2":
            f = (nk + kv / self.wiggle) / G
        else:  # free: kv <= f (G - nk)
            with np.errstate(divide="ignore", invalid="ignore"):
                f = np.where(G > nk, kv / np.where(G > nk, G - nk, 1.0), np.inf)
        f = np.ceil(f * 1000.0 - 1e-9) / 1000.0
        return np.where(f > 1.0, np.nan, f)


def pool_rule(framework: str, fraction, version=None) -> PoolRule:
    """The pool rule of a preallocating engine at a setting value.

    Parameters
    ----------
    framework : {"vllm", "sglang", "tgi", "trtllm"}
    fraction : float or array
        The engine's setting (:data:`POOL_SETTING`).
    version : str, optional
        TGI: the release (its wiggle room and form); the newest known for None.

    Examples
    --------
    >>> r = pool_rule("tgi", 1.0, "3.3.7"); (r.budget_fraction, r.scale)
    (0.9, 1.0)
    >>> r = pool_rule("trtllm", 0.9); (r.budget_fraction, r.scale)
    (1.0, 0.9)
    """
    if framework not in POOL_SETTING:
        raise ValueError(f"{framework} does not preallocate a KV pool; expected one of {', '.join(POOL_SETTING)}")
    f = fraction
    name = POOL_SETTING[framework]
    if framework == "tgi":
        w = tgi_wiggle_room(version)
        v = ".".join(map(str, tgi_version(version)))
        if tgi_version(version) >= (3, 0):
            return PoolRule(name, f, np.asarray(f, float) * w if np.ndim(f) else float(f) * w, 1.0, "tgi3",
                            f"TGI {v}: the pool fills the GPU up to cuda_memory_fraction x TGI_WIGGLE_ROOM {w:g} "
                            "of its memory after the warm-up prefill; CUDA graphs are captured in the rest", w)
        return PoolRule(name, f, f, w, "tgi2",
                        f"TGI {v}: TGI_WIGGLE_ROOM {w:g} of the memory free within cuda_memory_fraction after "
                        "the warm-up prefill", w)
    if framework == "trtllm":
        return PoolRule(name, f, 1.0, f, "free",
                        "TensorRT-LLM: free_gpu_memory_fraction of the memory left free after the weights, the "
                        "activation peak of its dummy max_num_tokens prefill and the non-torch memory")
    return PoolRule(name, f, f, 1.0, "static")
