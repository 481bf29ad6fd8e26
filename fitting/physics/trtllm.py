"""TensorRT-LLM activation memory at start-up: PyTorch backend and TensorRT engine path.

Pure functions, bytes per GPU. Sources (read in this session, public NVIDIA/TensorRT-LLM text):

* ``tensorrt_llm/_torch/pyexecutor/_util.py`` ``KvCacheCreator`` (the 0.20/0.21-era class
  version; a 2026 version keeps the same measurement): ``_create_dummy_context_requests``,
  ``estimate_max_tokens``, ``_cal_max_tokens``.
* ``tensorrt_llm/_torch/pyexecutor/py_executor_creator.py`` (order of creation) and
  ``py_executor.py`` ``PyExecutor.__init__`` (``self.model_engine.warmup(...)``).
* ``tensorrt_llm/_torch/modules/logits_processor.py`` ``LogitsProcessor.forward``.
* ``cpp/tensorrt_llm/runtime/tllmRuntime.cpp`` (``getDeviceMemorySizeV2`` and the log line
  "[MemUsageChange] Allocated %.2f MiB for execution context memory.").
* ``check_max_num_tokens`` (TensorRT-LLM build code) for the engine's token budget.
* docs ``docs/source/reference/memory.md`` (https://nvidia.github.io/TensorRT-LLM/reference/memory.html).

No constant below is fitted to the records; ``tests/test_trtllm_physics.py`` compares them.
"""

from __future__ import annotations

from dataclasses import dataclass

from fitting.physics.vllm import forward_activation_bytes

__all__ = [
    "KV_FREE_FRACTION_DEFAULT", "TRT_HIDDEN_COPIES", "pytorch_dummy_request_lengths",
    "pytorch_estimation_kv_tokens", "pytorch_activation_parts", "pytorch_activation_bytes",
    "pytorch_available_kv_bytes", "engine_max_num_tokens", "TrtActivationBounds",
    "trt_engine_activation_bounds",
]

#: ``KvCacheConfig.free_gpu_memory_fraction`` default (``_get_free_gpu_memory_fraction``: 0.9
#: when None; docs memory.md: "KV cache will by default allocate 90% of the remaining free GPU
#: memory").
KV_FREE_FRACTION_DEFAULT = 0.9

#: Hidden-width copies per token alive at a TensorRT layer's MLP peak: the residual stream and
#: the layer's normed input (2). TensorRT plans memory by liveness over the whole graph
#: (memory.md "Activation size"), with no compiled-graph boundary holding extra copies (the
#: reason vLLM's count is 5, :data:`fitting.physics.vllm.FORWARD_HIDDEN_COPIES`). A minimum
#: count from the graph, not fitted (vLLM's 5 gives 949 MiB against 870 printed for gpt-oss-120b, 2 gives 814).
TRT_HIDDEN_COPIES = 2.0


# ----------------------------------------------------------------------------- PyTorch backend
def pytorch_dummy_request_lengths(max_num_tokens: int, max_seq_len: int) -> list[int]:
    """Prompt lengths of the dummy context requests of the KV-size estimation run.

    ``KvCacheCreator.__init__`` builds them with ``_create_dummy_context_requests(
    net_max_seq_len - 1)``: ``input_seq_len = min(max_num_tokens, max_seq_len - 1)``, requests
    of that length (the last one shorter) until ``max_num_tokens`` tokens are used, each with
    ``max_tokens=1`` (one generated token).

    Parameters
    ----------
    max_num_tokens : int
        ``executor_config.max_num_tokens`` (the model engine's, after its own clamping).
    max_seq_len : int
        ``net_max_seq_len`` (model engine's ``max_seq_len``, before the overlap-scheduler +1).

    Returns
    -------
    list of int
    """
    T = int(max_num_tokens)
    L = min(T, int(max_seq_len) - 1)
    if T < 1 or L < 1:
        raise ValueError("max_num_tokens >= 1 and max_seq_len >= 2 required")
    out, left = [], T
    while left > 0:
        n = min(L, left)
        out.append(n)
        left -= n
    return out


def pytorch_estimation_kv_tokens(max_num_tokens: int, max_seq_len: int, tokens_per_block: int = 32,
                                 extra_tokens_per_seq: int = 1) -> int:
    """KV tokens of the temporary pool allocated for the estimation run.

    ``KvCacheCreator._get_token_num_for_estimation``: per dummy request
    ``ceil((len + 1 [+ draft tokens]) / tokens_per_block)`` blocks (requests share no block);
    ``try_prepare_estimation`` sets ``kv_cache_config.max_tokens`` to it. ``_cal_max_tokens``
    adds this pool back to the memory it sees as free ("tmp kv_mem").
    """
    blocks = sum(-(-(n + int(extra_tokens_per_seq)) // int(tokens_per_block))
                 for n in pytorch_dummy_request_lengths(max_num_tokens, max_seq_len))
    return blocks * int(tokens_per_block)


@dataclass(frozen=True)
class PyTorchActivationParts:
    """Stages of the estimation forward, bytes per GPU.

    Attributes
    ----------
    forward : float
        One layer's working set over ``T`` tokens (:func:`fitting.physics.vllm.forward_activation_bytes`).
    logits : float
        Last-token logits: ``R x V x (b + 4)`` (lm_head output in the model dtype, then the
        ``.float()`` copy of ``LogitsProcessor.forward``) plus the ``T x h x b`` final hidden states.
    peak : float
        ``max(forward, logits)``.
    num_requests : int
        ``R``, rows of the logits.
    """

    forward: float
    logits: float
    peak: float
    num_requests: int


def pytorch_activation_parts(arch, *, max_num_tokens: int, max_seq_len: int, tp: int = 1, dtype_bytes: int = 2,
                             hidden_copies: float | None = None) -> PyTorchActivationParts:
    r"""The PyTorch backend's "Memory dynamically allocated during inference (inside torch)".

    Physics (``_util.py`` ``KvCacheCreator.estimate_max_tokens``): after the first
    ``PyExecutor`` is built (its ``__init__`` runs ``model_engine.warmup``: torch.compile,
    autotuner, CUDA-graph capture, all *before* the measurement), it calls
    ``torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()``, reads
    ``model_bytes = allocated_bytes.all.current`` (weights, plus anything still allocated,
    such as graph outputs), runs the dummy requests of :func:`pytorch_dummy_request_lengths`
    (one context batch of :math:`T` = ``max_num_tokens`` tokens in
    :math:`R = \lceil T / \min(T, S-1) \rceil` requests, one output token each) and prints
    ``activation = allocated_bytes.all.peak - model_bytes``.

    The logits are computed for the last token of each request only
    (``LogitsProcessor.forward``: ``hidden_states[cumsum(seq_lens) - 1]`` unless
    ``return_context_logits``), then ``.float()``: :math:`R V (b + 4)` bytes. The sampler
    (``TorchSampler``) works on those :math:`R` rows; its buffers sized by
    ``max_batch_size`` are allocated at construction (before ``model_bytes`` is read), so they
    are not in the printed figure.

    .. math:: A = \max\big(F(T),\; T h b + R V (b + 4)\big)

    Parameters
    ----------
    arch : fitting Architecture
    max_num_tokens, max_seq_len : int
    tp : int
        Tensor parallel size (column-parallel widths divided; lm_head gathers the full vocab
        on every rank: ``LMHead(gather_output=True)``).
    dtype_bytes : int
    hidden_copies : float, optional
        Passed to ``forward_activation_bytes`` (its default, vLLM's count, when None).
    """
    T = int(max_num_tokens)
    R = len(pytorch_dummy_request_lengths(T, max_seq_len))
    kw = {} if hidden_copies is None else {"hidden_copies": hidden_copies}
    fwd = float(forward_activation_bytes(arch, T, tp=tp, dtype_bytes=dtype_bytes, **kw))
    b = float(dtype_bytes)
    logits = T * arch.hidden_size * b + R * arch.vocab_size * (b + 4.0)
    return PyTorchActivationParts(fwd, logits, max(fwd, logits), R)


def pytorch_activation_bytes(arch, **kw) -> float:
    """Peak of :func:`pytorch_activation_parts` (bytes per GPU)."""
    return pytorch_activation_parts(arch, **kw).peak


def pytorch_available_kv_bytes(total_gpu_bytes: float, peak_bytes: float, *, tmp_kv_bytes: float = 0.0,
                               fraction: float = KV_FREE_FRACTION_DEFAULT) -> float:
    """``_cal_max_tokens``: ``(total - peak + tmp_kv) x fraction``.

    ``peak = torch_peak + extra_cost`` where ``extra_cost = max(used_after - torch_allocated, 0)``
    is the memory outside torch (CUDA context, NCCL, CUDA graphs) measured after
    ``empty_cache``; ``tmp_kv`` is the estimation pool (:func:`pytorch_estimation_kv_tokens`
    x bytes per token). Later releases add the KV-transceiver pre-allocation to ``peak``.
    """
    return (float(total_gpu_bytes) - float(peak_bytes) + float(tmp_kv_bytes)) * float(fraction)


# ----------------------------------------------------------------------------- TensorRT engine
def engine_max_num_tokens(max_batch_size: int, max_seq_len: int, max_num_tokens: int | None = None, *,
                          max_input_len: int | None = None, remove_input_padding: bool = True,
                          enable_context_fmha: bool = True, tokens_per_block: int = 64) -> int:
    """The token dimension the engine is built for (``check_max_num_tokens``).

    Packed input (``remove_input_padding``): ``max_num_tokens`` (None ->
    ``max_batch_size x max_seq_len``), clamped to ``max_seq_len x max_batch_size``; with context
    FMHA at least ``tokens_per_block``, without it at least ``max_input_len``. Padded input: the
    docs (memory.md) give ``max_batch_size x max_input_len``; the build code sets
    ``max_batch_size x max_seq_len`` (used here when ``max_input_len`` is None).
    """
    B, S = int(max_batch_size), int(max_seq_len)
    if not remove_input_padding:
        return B * (int(max_input_len) if max_input_len is not None else S)
    T = B * S if max_num_tokens is None else int(max_num_tokens)
    T = min(T, S * B)
    if enable_context_fmha:
        T = max(T, int(tokens_per_block))
    elif max_input_len is not None:
        T = max(T, int(max_input_len))
    return T


@dataclass(frozen=True)
class TrtActivationBounds:
    """First-order bounds on ``ICudaEngine::getDeviceMemorySizeV2`` (bytes).

    Attributes
    ----------
    forward : float
        One decoder layer's working set over ``T`` tokens (TensorRT reuses memory across
        layers: memory.md, "only 1 block's memory is needed").
    logits : float
        lm_head stage: ``T h b`` + ``R V b`` with ``R = T`` (``gather_context_logits``) else
        ``max_batch_size`` (last token per sequence).
    workspace : float
        Caller-given plugin/cuBLAS workspace (default 0; not derived here).
    lower, upper : float
        ``max(forward, logits) + workspace`` (perfect reuse between the two stages) and
        ``forward + logits + workspace`` (no reuse).
    """

    forward: float
    logits: float
    workspace: float
    lower: float
    upper: float


def trt_engine_activation_bounds(arch, *, max_num_tokens: int, max_batch_size: int, tp: int = 1,
                                 dtype_bytes: int = 2, gather_context_logits: bool = False,
                                 logits_dtype_bytes: int | None = None, hidden_copies: float = TRT_HIDDEN_COPIES,
                                 workspace_bytes: float = 0.0) -> TrtActivationBounds:
    r"""Bounds on the TensorRT engine's execution-context (activation) memory.

    There is no closed form in TensorRT-LLM: the figure is ``engine.getDeviceMemorySizeV2()``
    (``tllmRuntime.cpp``), computed by TensorRT's builder from the optimized graph at the
    largest profile shapes. The docs (memory.md, "Activation size") state it is fixed at build,
    "close to ``max number of input tokens * some constant factor``", the token count being
    ``max_num_tokens`` (packed) or ``max_batch_size * max_input_len`` (padded), reduced by
    context FMHA (without it the attention workspace is quadratic in sequence length) and by
    tensor parallelism (split tensors), not by pipeline parallelism (one block's memory).

    This gives the two stages that must fit, not TensorRT's plan:

    .. math:: F = T (k_h h + \max(\text{attn}, c_I I)/tp) b, \qquad
              L = T h b + R V b_\ell, \qquad \max(F, L) \le A \lesssim F + L

    with :math:`R = T` under ``gather_context_logits`` and ``max_batch_size`` otherwise (the
    model gathers the last token per sequence before lm_head). The lm_head output is
    counted in the model dtype :math:`b_\ell = b` (an internal tensor; the ``logits`` output
    itself, an I/O tensor, is allocated by the runtime's buffers, not here).

    Parameters
    ----------
    arch : fitting Architecture
    max_num_tokens : int
        The built token budget (:func:`engine_max_num_tokens`).
    max_batch_size : int
    tp : int
    dtype_bytes : int
        Activation dtype (2 for fp16/bf16; fp8/int8/int4 weight formats keep 16-bit
        activations in most kernels).
    gather_context_logits : bool
    logits_dtype_bytes : int, optional
        Bytes of the internal lm_head output (default ``dtype_bytes``).
    hidden_copies : float, default :data:`TRT_HIDDEN_COPIES`
    workspace_bytes : float, default 0
    """
    T = int(max_num_tokens)
    b = float(dtype_bytes)
    bl = b if logits_dtype_bytes is None else float(logits_dtype_bytes)
    fwd = float(forward_activation_bytes(arch, T, tp=tp, dtype_bytes=dtype_bytes, hidden_copies=hidden_copies))
    R = T if gather_context_logits else int(max_batch_size)
    logits = T * arch.hidden_size * b + R * arch.vocab_size * bl
    w = float(workspace_bytes)
    return TrtActivationBounds(fwd, logits, w, max(fwd, logits) + w, fwd + logits + w)

