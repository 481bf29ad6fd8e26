"""TGI (Hugging Face text-generation-inference): the warm-up prefill and the KV block pool.

TGI sizes its KV pool once, after a *warm-up* prefill of the largest batch it will accept,
from the memory then free. What the pool gets is therefore the GPU less everything the
warm-up left in use: the weights, the CUDA context and the activation peak of that prefill
(held by PyTorch's caching allocator: nothing frees it before the measurement). This module
gives the warm-up batch and its activation peak per release, and the pool identity, read in
the repository's tags v2.0.1-v3.3.7 (``huggingface/text-generation-inference``):

* **The warm-up batch** (the router's ``warmup``: ``router/client/src/client.rs`` 2.0,
  ``router/client/src/v3/client.rs`` 2.1-2.3, ``backends/v3/src/client/grpc_client.rs``
  2.4-3.3). Requests of ``truncate = min(max_input_tokens, max_batch_prefill_tokens - n)``
  tokens are added, ``n`` growing by ``max_input_tokens``, until ``max_batch_prefill_tokens``
  tokens (or ``max_batch_size`` requests) are reached; each asks for ``prefill_logprobs:
  true``, ``top_n_tokens: 20`` and every sampling processor, with ``max_new_tokens =
  max_total_tokens - truncate``.
* **Prefill log-probabilities** (``models/flash_causal_lm.py``, ``generate_token``). With
  ``prefill_logprobs`` the LM head runs over *every* prompt position (``prefill_head_indices``),
  giving ``out`` of ``[T, V]`` in the model dtype, then ``torch.log_softmax(out, -1)``:
  a second ``[T, V]`` tensor up to 2.3 (``prefill_logprobs_tensor = torch.log_softmax(out,
  -1)``), in place from 2.4 (``torch.log_softmax(out, -1, out=out)``). From 3.0 the server
  drops the request's ``prefill_logprobs`` unless ``REQUEST_LOGPROBS=1`` (``models/globals.py``,
  default ``"0"``; "This consumes so much memory on long requests"): the head then runs on
  each request's last position only.
* **Tensor parallelism** (``layers/tensor_parallel.py``, ``TensorParallelHead.forward``): each
  rank computes its ``[T, V / tp]`` slice, then ``all_gather_into_tensor`` into a full
  ``[T, V]`` on every rank.
* **The pool** (``FlashCausalLM.warmup``). With ``free`` the memory ``torch.cuda.mem_get_info``
  reports less ``(1 - x) total`` (``utils/import_utils.py``, ``get_cuda_free_memory``) and
  ``nb`` the warm-up batch's own blocks (allocated before the prefill and added back):

  - 2.0-2.3: ``num_blocks = floor(0.95 free(x = cuda_memory_fraction) / block) + nb``;
  - 2.4: the same with ``TGI_WIGGLE_ROOM`` (0.90) for 0.95;
  - 3.x: ``num_blocks = floor(free(x = cuda_memory_fraction x TGI_WIGGLE_ROOM) / block) + nb``.

  ``max batch total tokens`` is ``num_blocks x BLOCK_SIZE`` (16 tokens a block with paged
  attention, 1 with flashinfer, 256 with flashdecoding), the minimum over the shards.

The launcher's defaults (``launcher/src/main.rs``): up to 2.3, ``max_input_tokens =
min(max_position_embeddings, 4096) - 1``, ``max_total_tokens = min(max_position_embeddings,
4096)`` and ``max_batch_prefill_tokens = max_input_tokens + 50``; 2.4 takes
``max_batch_prefill_tokens = min(4096, max_position_embeddings)``; 3.x a per-card estimate
(10,000 for Qwen2-VL / Qwen2.5-VL, 8,000 for Gemma 3, else 4,096, at most the model's context),
which it prints as "Default `max_batch_prefill_tokens` to N".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .architecture import Architecture
from .vllm import forward_activation_bytes

__all__ = ["TGI_NEWEST_KNOWN", "WarmupParts", "tgi_version", "tgi_wiggle_room", "prefill_logprobs_copies",
           "launcher_defaults", "warmup_request_lengths", "warmup_batch_blocks", "warmup_batch_tokens",
           "warmup_activation_parts", "non_kv_from_pool", "pool_from_non_kv"]

#: Newest TGI release whose warm-up was read.
TGI_NEWEST_KNOWN = "3.3.7"
#: The launcher's context cap where the model allows more (``max_default``), 2.0-3.3.
LAUNCHER_MAX_DEFAULT = 4096
#: Paged-attention block size (tokens) without flashinfer / flashdecoding (``models/globals.py``).
PAGED_BLOCK_TOKENS = 16
#: ``TGI_WIGGLE_ROOM`` default from each (major, minor) on (``models/globals.py``; up to 2.3 the
#: constant 0.95 written in ``warmup``).
_WIGGLE = (((3, 3), 0.90), ((3, 1), 0.93), ((3, 0), 0.95), ((2, 4), 0.90), ((0, 0), 0.95))


def tgi_version(version=None) -> tuple[int, int]:
    """``(major, minor)`` of a TGI release string (``"2.2.0"``, ``"v3.3.4"``, ``"2.0"``); the
    newest known for None or an unreadable string."""
    m = re.match(r"\s*v?(\d+)\.(\d+)", str(version or TGI_NEWEST_KNOWN))
    if not m:
        m = re.match(r"(\d+)\.(\d+)", TGI_NEWEST_KNOWN)
    return int(m.group(1)), int(m.group(2))


def tgi_wiggle_room(version=None) -> float:
    """TGI's share of the free memory its pool takes (``TGI_WIGGLE_ROOM`` default).

    >>> tgi_wiggle_room("2.2.0"), tgi_wiggle_room("2.4.1"), tgi_wiggle_room("3.2.3"), tgi_wiggle_room("3.3.7")
    (0.95, 0.9, 0.93, 0.9)
    """
    v = tgi_version(version)
    return next(w for since, w in _WIGGLE if v >= since)


def prefill_logprobs_copies(version=None) -> int:
    """``[T, V]`` tensors the warm-up's prefill log-probabilities hold at once.

    2 up to 2.3 (the logits and the out-of-place ``log_softmax``), 1 in 2.4 (in place), 0 from
    3.0 (``REQUEST_LOGPROBS`` off by default: no prefill log-probabilities, logits at the last
    position of each request only).

    >>> [prefill_logprobs_copies(v) for v in ("2.0.4", "2.3.1", "2.4.1", "3.0.0")]
    [2, 2, 1, 0]
    """
    v = tgi_version(version)
    if v >= (3, 0):
        return 0
    return 1 if v >= (2, 4) else 2


def launcher_defaults(max_position_embeddings: int | None, version=None, *, model_type: str | None = None) -> dict:
    """The launcher's ``max_input_tokens``, ``max_total_tokens`` and ``max_batch_prefill_tokens``.

    Parameters
    ----------
    max_position_embeddings : int or None
        The model's context (``config.json``); None: 4096, as the launcher assumes.
    version : str, optional
        TGI release; the newest known for None.
    model_type : str, optional
        3.x: ``qwen2_vl`` / ``qwen2_5_vl`` (10,000) and ``gemma3`` (8,000) have their own
        prefill default; the per-card estimate 3.x may choose instead (``compute_optimal``)
        is not modelled (its log line prints what it chose).

    Returns
    -------
    dict
        ``max_input_tokens`` and ``max_total_tokens`` (None from 2.4, where the server picks
        them after warm-up), ``max_batch_prefill_tokens`` and ``rule`` (text).

    Examples
    --------
    >>> launcher_defaults(131072, "2.2.0")["max_batch_prefill_tokens"]  # Llama-3.1: 4095 + 50
    4145
    >>> launcher_defaults(32768, "3.3.4", model_type="gemma3")["max_batch_prefill_tokens"]
    8000
    """
    mpe = int(max_position_embeddings or LAUNCHER_MAX_DEFAULT)
    capped = min(mpe, LAUNCHER_MAX_DEFAULT)
    v = tgi_version(version)
    if v < (2, 4):
        return {"max_input_tokens": capped - 1, "max_total_tokens": capped, "max_batch_prefill_tokens": capped + 49,
                "rule": f"TGI {v[0]}.{v[1]} launcher: max_input_tokens min(context, 4096) - 1 = {capped - 1}, "
                        f"max_batch_prefill_tokens max_input_tokens + 50 = {capped + 49}"}
    if v < (3, 0):
        return {"max_input_tokens": None, "max_total_tokens": None, "max_batch_prefill_tokens": capped,
                "rule": f"TGI {v[0]}.{v[1]} launcher: max_batch_prefill_tokens min(4096, context) = {capped}"}
    default = {"qwen2_vl": 10_000, "qwen2_5_vl": 10_000, "gemma3": 8000}.get(str(model_type or ""), 4096)
    value = min(default, mpe)
    return {"max_input_tokens": None, "max_total_tokens": None, "max_batch_prefill_tokens": value,
            "rule": f"TGI {v[0]}.{v[1]} launcher fallback: max_batch_prefill_tokens {value} (a known card may get "
                    "another value, printed as 'Default `max_batch_prefill_tokens` to N')"}


def warmup_request_lengths(max_batch_prefill_tokens: int, max_input_tokens: int | None = None,
                           max_batch_size: int | None = None) -> list[int]:
    """Prompt lengths of the router's warm-up requests.

    >>> warmup_request_lengths(4145, 4095)  # TGI 2.2 defaults for a 128k-context model
    [4095, 50]
    >>> warmup_request_lengths(8192, 2048, max_batch_size=3)
    [2048, 2048, 2048]
    """
    T = int(max_batch_prefill_tokens)
    step = int(max_input_tokens) if max_input_tokens else T
    if T < 1 or step < 1:
        raise ValueError("max_batch_prefill_tokens and max_input_tokens must be >= 1")
    out, n = [], 0
    while n < T:
        out.append(min(step, T - n))
        n += step
        if max_batch_size is not None and len(out) == int(max_batch_size):
            break
    return out


def warmup_batch_blocks(lengths, max_total_tokens: int, block_tokens: int = PAGED_BLOCK_TOKENS) -> int:
    """Blocks the warm-up batch allocates (2.0-2.3: each request holds ``input + max_new_tokens
    - 1 = max_total_tokens - 1`` tokens, ``FlashCausalLMBatch.from_tokenized``).

    >>> warmup_batch_blocks([4095, 50], 4096)
    512
    """
    per_request = math.ceil((int(max_total_tokens) - 1) / int(block_tokens))
    return per_request * len(list(lengths))


def warmup_batch_tokens(version=None, *, max_total_tokens: int | None = None,
                        max_batch_prefill_tokens: int | None = None) -> int:
    """Tokens of KV blocks the warm-up batch holds when the pool is sized (``nb`` x block).

    2.0-2.3: the launcher's defaults where a setting is not given (``max_total_tokens``
    4096, prefill ``max_total_tokens + 49``), each request holding ``max_total_tokens - 1``
    tokens; 2.4 without ``max_total_tokens``: one request of the prefill budget asking one new
    token (``backends/v3/src/client/grpc_client.rs``); 3.x: 0, the batch's blocks cancel in
    the pool identity (measured in use, then added back).

    >>> warmup_batch_tokens("2.2.0"), warmup_batch_tokens("2.4.1"), warmup_batch_tokens("3.3.7")
    (8192, 4096, 0)
    """
    v = tgi_version(version)
    if v >= (3, 0):
        return 0
    if v < (2, 4):
        mt = max_total_tokens or LAUNCHER_MAX_DEFAULT
        T = max_batch_prefill_tokens or mt + 49
    else:
        T = max_batch_prefill_tokens or LAUNCHER_MAX_DEFAULT
        mt = max_total_tokens or T + 1
    return warmup_batch_blocks(warmup_request_lengths(T, mt - 1), mt) * PAGED_BLOCK_TOKENS


@dataclass(frozen=True)
class WarmupParts:
    """Activation bytes of TGI's warm-up prefill on one GPU.

    Attributes
    ----------
    forward, logits, peak : float
        The forward pass's largest layer working set, the LM head's logits (and
        log-probabilities) with the hidden states they are computed from, and
        ``peak = max(forward, logits)``.
    num_requests : int
    logits_copies : int
        ``[T, V]`` tensors held at once (:func:`prefill_logprobs_copies`).
    """

    forward: float
    logits: float
    peak: float
    num_requests: int
    logits_copies: int


def warmup_activation_parts(arch: Architecture, *, max_batch_prefill_tokens: int, max_input_tokens: int | None = None,
                            version=None, tp: int = 1, dtype_bytes: int = 2,
                            max_batch_size: int | None = None) -> WarmupParts:
    r"""Activation peak of TGI's warm-up prefill, per GPU (bytes).

    With :math:`T` = ``max_batch_prefill_tokens`` prompt tokens in :math:`R` requests, :math:`V`
    the vocabulary, :math:`h` the hidden size and :math:`b` the dtype bytes:

    * the forward: one layer's working set over :math:`T` tokens
      (:func:`fitting.physics.vllm.forward_activation_bytes`);
    * the head: :math:`T h b` of hidden states plus, with prefill log-probabilities (2.0-2.4),
      :math:`c\,T V b` (:math:`c` = 2 up to 2.3, 1 in 2.4; with ``tp`` > 1 the gather holds the
      rank's slice beside the full tensor, :math:`T V (1 + 1/tp) b`, which bounds :math:`c = 1`
      from below); from 3.0 only each request's last position, :math:`R V b`.

    The next-token chooser works on :math:`R` rows and is left out.

    Examples
    --------
    >>> from fitting.data.registry import resolve_model
    >>> a = resolve_model("meta-llama/Llama-3.1-8B-Instruct").architecture
    >>> p = warmup_activation_parts(a, max_batch_prefill_tokens=4145, max_input_tokens=4095, version="2.2.0")
    >>> round(p.logits / 2**30, 2), p.num_requests, p.logits_copies
    (2.01, 2, 2)
    >>> round(warmup_activation_parts(a, max_batch_prefill_tokens=4096, version="3.3.4").peak / 2**30, 2)
    0.48
    """
    T = int(max_batch_prefill_tokens)
    R = len(warmup_request_lengths(T, max_input_tokens, max_batch_size))
    tp = int(tp)
    b = float(dtype_bytes)
    V, h = float(arch.vocab_size), float(arch.hidden_size)
    copies = prefill_logprobs_copies(version)
    fwd = float(forward_activation_bytes(arch, T, tp=tp, dtype_bytes=dtype_bytes))
    if copies == 0:
        head = T * h * b + R * V * b
    else:
        head = T * h * b + T * V * b * max(float(copies), 1.0 + (1.0 / tp if tp > 1 else 0.0))
    return WarmupParts(fwd, head, max(fwd, head), R, copies)


def non_kv_from_pool(pool_bytes, gpu_total_bytes, *, fraction=1.0, version=None, batch_kv_bytes=0.0):
    """What TGI's warm-up left in use besides the KV cache, from the pool it then sized.

    Inverts the pool rule (module docstring): 3.x ``pool = x w G - used``; 2.x ``pool = w (x G
    - used - nb) + nb``, with ``used`` everything but the warm-up batch's blocks ``nb``
    (``batch_kv_bytes``). The floor to whole blocks puts ``used`` up to one block (2.x: 1/w
    block) above the returned value.

    Examples
    --------
    >>> round(non_kv_from_pool(10.0, 80.0, version="3.3.7"), 6)  # 0.9 x 80 - 10
    62.0
    >>> round(non_kv_from_pool(10.0, 80.0, version="2.2.0", batch_kv_bytes=1.0), 6)  # 80 - 9 / 0.95 - 1
    69.526316
    """
    w = tgi_wiggle_room(version)
    x = np.asarray(fraction, float)
    pool, G, nb = (np.asarray(v, float) for v in (pool_bytes, gpu_total_bytes, batch_kv_bytes))
    if tgi_version(version) >= (3, 0):
        out = x * w * G - pool
    else:
        out = x * G - (pool - nb) / w - nb
    return float(out) if np.ndim(out) == 0 else out


def pool_from_non_kv(non_kv_bytes, gpu_total_bytes, *, fraction=1.0, version=None, batch_kv_bytes=0.0):
    """The pool (bytes, before rounding to blocks) TGI sizes beside ``non_kv_bytes`` in use;
    the inverse of :func:`non_kv_from_pool` (negative: the warm-up leaves no room).

    >>> round(pool_from_non_kv(non_kv_from_pool(7.0, 24.0, version="2.2.0", batch_kv_bytes=1.0), 24.0,
    ...                        version="2.2.0", batch_kv_bytes=1.0), 6)
    7.0
    """
    w = tgi_wiggle_room(version)
    x = np.asarray(fraction, float)
    used, G, nb = (np.asarray(v, float) for v in (non_kv_bytes, gpu_total_bytes, batch_kv_bytes))
    if tgi_version(version) >= (3, 0):
        out = x * w * G - used
    else:
        out = w * (x * G - used - nb) + nb
    return float(out) if np.ndim(out) == 0 else out
