"""Exact memory physics of LLM inference: weights, KV cache, activations (bytes, per GPU).

Pure functions of an :class:`~fitting.physics.architecture.Architecture` and the workload. Every
workload argument (``tp``, ``pp``, ``num_tokens``, ``num_seqs``, ``batch_size``,
``seq_len``, ``max_num_batched_tokens``) may be a numpy array; results broadcast and are
returned as ``float`` when every argument is a scalar. Memory is in **bytes**; convert at
the edges with :mod:`fitting.units`.

Conventions (vLLM's, the reference framework of the checks in ``tests/``):

* **Tensor parallelism** — column-parallel matrices (q/k/v, gate/up, MLA q_b/kv_b, expert
  gate/up) split their output rows, row-parallel ones (o, down) their input columns;
  head-wise splits keep ``ceil(heads / tp)`` heads per GPU, so KV heads are *replicated*
  when ``tp > num_kv_heads``; norms, routers, MLA ``q_a``/``kv_a`` projections and
  row-parallel biases are replicated; the embedding and LM head are vocab-parallel: rows
  padded to a multiple of 64 (vLLM ``pad_vocab_size``, also at ``tp = 1``), then divided by
  ``tp`` (vLLM requires the padded vocabulary to divide evenly; ``ceil`` is used otherwise).
  GGUF weights are not padded (llama.cpp).
* **Pipeline parallelism** — layers split as vLLM's ``get_pp_indices`` (remainder layers
  go to the stages before the last); the embedding sits on the first stage, the final
  norm and LM head on the last (a tied LM head is an extra copy there when ``pp > 1``).
  Per-GPU results are those of the **largest stage**.
* **MoE** — every expert is resident; TP splits each expert's intermediate dimension.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .architecture import Architecture
from .parameters import TensorSpec, mlp_is_gated, tensor_inventory
from .quantization import (
    GGUF_TYPE_BITS,
    GGUFFormat,
    WeightFormat,
    dtype_bytes,
    kv_cache_bytes_per_element,
    normalize_dtype,
    weight_format,
)

__all__ = [
    "weight_bytes_per_gpu", "weight_bytes_per_stage", "kv_bytes_per_token", "kv_bytes_per_token_split",
    "kv_bytes_per_layer",
    "kv_cache_bytes", "activation_bytes", "VLLM_SAMPLER_FP32_COPIES", "KVLayerSplit", "pp_partition",
    "resolve_dtype", "VOCAB_PADDING", "FRAMEWORK_KINDS",
]

#: vLLM's DEFAULT_VOCAB_PADDING_SIZE (vocab_parallel_embedding.py).
VOCAB_PADDING = 64

#: framework name -> activation-estimate kind.
FRAMEWORK_KINDS = {
    "vllm": "vllm", "sglang": "pool", "trtllm": "pool", "tensorrt-llm": "pool", "tgi": "pool",
    "transformers": "transformers", "pytorch": "transformers",
    "llamacpp": "llamacpp", "llama.cpp": "llamacpp", "ollama": "llamacpp",
}


# ----------------------------------------------------------------------------- helpers
def _out(x):
    x = np.asarray(x, dtype=float)
    return float(x) if x.ndim == 0 else x


def resolve_dtype(dtype: str | None, arch: Architecture) -> str:
    """Canonical dtype; ``auto``/None = the checkpoint's ``torch_dtype`` (bfloat16 if unstated).

    Note that vLLM's ``--dtype auto`` loads float32 checkpoints in 16 bits; pass the dtype
    explicitly to model that.
    """
    canon = normalize_dtype(dtype)
    if canon is not None:
        return canon
    return normalize_dtype(arch.torch_dtype) or "bfloat16"


def pp_partition(num_layers: int, pp: int) -> list[int]:
    """Layers per pipeline stage, as vLLM's ``get_pp_indices`` assigns them.

    >>> pp_partition(61, 4)
    [15, 15, 16, 15]
    """
    pp = int(pp)
    if pp < 1 or pp > num_layers:
        raise ValueError(f"pp={pp}: must be between 1 and num_layers={num_layers}")
    parts = [num_layers // pp] * pp
    for i in range(2, num_layers % pp + 2):
        parts[-i] += 1
    return parts


def _stage_bounds(num_layers: int, pp: int) -> list[tuple[int, int]]:
    bounds, start = [], 0
    for n in pp_partition(num_layers, pp):
        bounds.append((start, start + n))
        start += n
    return bounds


def _ceil_div(a, b):
    return -(-np.asarray(a) // np.asarray(b))


def _per_gpu_shape(spec: TensorSpec, tp: int, pad_vocab: bool = True) -> tuple[int, int]:
    rows, cols = spec.rows, spec.cols
    if spec.split == "vocab":
        padded = int(_ceil_div(rows, VOCAB_PADDING)) * VOCAB_PADDING if pad_vocab else rows
        return int(_ceil_div(padded, tp)), cols
    if tp == 1 or spec.split == "replicated":
        return rows, cols
    if spec.split == "column":
        if spec.heads:
            return int(_ceil_div(spec.heads, tp)) * (rows // spec.heads), cols
        return int(_ceil_div(rows, tp)), cols
    if spec.split == "row":
        if spec.heads:
            return rows, int(_ceil_div(spec.heads, tp)) * (cols // spec.heads)
        return rows, int(_ceil_div(cols, tp))
    raise ValueError(f"unknown split {spec.split!r}")


def _spec_bytes(spec: TensorSpec, tp: int, fmt, unq_bytes: int, arch: Architecture, layer: int | None) -> float:
    """Bytes of one instance (one layer) of ``spec`` on one GPU."""
    rows, cols = _per_gpu_shape(spec, tp, pad_vocab=not isinstance(fmt, GGUFFormat))
    if isinstance(fmt, GGUFFormat):
        if not spec.is_matrix:
            return rows * cols * spec.copies * 4.0  # F32 vectors
        gtype = fmt.tensor_type(spec, layer, arch)
        return rows * cols * spec.copies * GGUF_TYPE_BITS[gtype] / 8.0
    if isinstance(fmt, WeightFormat) and fmt.applies_to(spec):
        return float(fmt.matrix_bytes(rows, cols)) * spec.copies
    return float(rows * cols * spec.copies * unq_bytes)


_LAYER_DEPENDENT_GGUF_ROLES = ("attn_v", "mlp_down")


@lru_cache(maxsize=512)
def _weight_layout(arch: Architecture, fmt_name: str | None, dtype: str, tp: int, embedding_on_gpu: bool):
    """(per-layer bytes array, first-stage extra bytes, last-stage extra bytes, tied lm_head bytes)."""
    fmt = weight_format(fmt_name)
    unq = dtype_bytes(dtype)
    per_layer = np.zeros(arch.num_layers)
    first = last = 0.0
    embed_bytes = 0.0
    for spec in tensor_inventory(arch):
        if spec.layers is None:
            b = _spec_bytes(spec, tp, fmt, unq, arch, None)
            if spec.stage == "first":
                if spec.role == "embedding":
                    embed_bytes = b
                if embedding_on_gpu or spec.role not in ("embedding", "pos_embedding"):
                    first += b
            else:
                last += b
            continue
        if isinstance(fmt, GGUFFormat) and fmt.mix and spec.role in _LAYER_DEPENDENT_GGUF_ROLES:
            for layer in spec.layers:
                per_layer[layer] += _spec_bytes(spec, tp, fmt, unq, arch, layer)
        else:
            b = _spec_bytes(spec, tp, fmt, unq, arch, spec.layers[0])
            per_layer[list(spec.layers)] += b
    tied_head = 0.0
    if arch.tie_word_embeddings:
        head = TensorSpec("lm_head.weight", "lm_head", arch.vocab_size, arch.hidden_size, stage="last", split="vocab")
        tied_head = _spec_bytes(head, tp, fmt, unq, arch, None) if isinstance(fmt, GGUFFormat) else embed_bytes
    return per_layer, first, last, tied_head


def _stage_weights(arch, fmt_name, dtype, tp: int, pp: int, embedding_on_gpu: bool) -> list[float]:
    per_layer, first, last, tied_head = _weight_layout(arch, fmt_name, dtype, tp, embedding_on_gpu)
    bounds = _stage_bounds(arch.num_layers, pp)
    out = []
    for s, (a, b) in enumerate(bounds):
        total = float(per_layer[a:b].sum())
        if s == 0:
            total += first
        if s == len(bounds) - 1:
            total += last
            if arch.tie_word_embeddings and (pp > 1 or not embedding_on_gpu):
                total += tied_head
        out.append(total)
    return out


@lru_cache(maxsize=4096)
def _max_stage_weight(arch, fmt_name, dtype, tp: int, pp: int, embedding_on_gpu: bool) -> float:
    return max(_stage_weights(arch, fmt_name, dtype, tp, pp, embedding_on_gpu))


def _int_array(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.number) or np.any(arr < 1) or np.any(arr != np.floor(arr)):
        raise ValueError(f"{name}: must be positive integers, got {x!r}")
    return arr.astype(int)


def _fmt_key(quantization) -> str | None:
    fmt = weight_format(quantization)  # validates early, clear error
    if fmt is None:
        return None
    return f"gguf:{fmt.name}" if isinstance(fmt, GGUFFormat) else fmt.name


# ----------------------------------------------------------------------------- weights
def weight_bytes_per_gpu(arch: Architecture, *, dtype: str = "bfloat16", quantization: str | None = None,
                         tp=1, pp=1, embedding_on_gpu: bool = True):
    """Bytes of model weights resident on one GPU (the largest pipeline stage).

    Parameters
    ----------
    arch : Architecture
    dtype : str, default "bfloat16"
        Storage dtype of unquantized tensors (``float32``, ``float16``, ``bfloat16``, or
        ``auto`` = the checkpoint's ``torch_dtype``).
    quantization : str or None
        Weight format (see :func:`fitting.physics.quantization.weight_format`): None = unquantized,
        ``awq``, ``gptq-int8-g128``, ``fp8``, ``fp8-block128``, ``mxfp4``, ``nvfp4``,
        ``bnb-nf4``, ``gguf:Q4_K_M``... Quantization metadata (scales, zeros) is included.
    tp, pp : int or array of int
        Tensor- and pipeline-parallel degrees (see the module docstring for the split).
    embedding_on_gpu : bool, default True
        False for llama.cpp, which keeps ``token_embd`` in host memory (a tied output
        matrix is then counted on the GPU as its own copy).

    Returns
    -------
    float or ndarray
        Bytes per GPU. All MoE experts are resident.

    Notes
    -----
    .. math:: W_{gpu} = \\max_{s} \\Big( \\sum_{l \\in s} W_l(tp) + [s=0] W_{emb}(tp)
              + [s=last] (W_{norm} + W_{head}(tp)) \\Big)

    Examples
    --------
    >>> from fitting.data.registry import resolve_model
    >>> a = resolve_model("meta-llama/Llama-3.1-8B").architecture
    >>> weight_bytes_per_gpu(a)  # 8,030,261,248 params x 2 bytes
    16060522496.0
    """
    dtype = resolve_dtype(dtype, arch)
    key = _fmt_key(quantization)
    tp_a, pp_a = np.broadcast_arrays(_int_array(tp, "tp"), _int_array(pp, "pp"))
    out = np.empty(tp_a.shape)
    for idx in np.ndindex(tp_a.shape):
        out[idx] = _max_stage_weight(arch, key, dtype, int(tp_a[idx]), int(pp_a[idx]), embedding_on_gpu)
    return _out(out)


def weight_bytes_per_stage(arch: Architecture, *, dtype: str = "bfloat16", quantization: str | None = None,
                           tp: int = 1, pp: int = 1, embedding_on_gpu: bool = True) -> list[float]:
    """Weight bytes per GPU of every pipeline stage (scalar ``tp``/``pp``), first to last.

    :func:`weight_bytes_per_gpu` is the maximum of this list.

    >>> from fitting.data.registry import resolve_model
    >>> a = resolve_model("meta-llama/Llama-3.1-8B").architecture
    >>> [round(b / 2**30, 2) for b in weight_bytes_per_stage(a, pp=2)]
    [7.48, 7.48]
    """
    return _stage_weights(arch, _fmt_key(quantization), resolve_dtype(dtype, arch), int(tp), int(pp),
                          embedding_on_gpu)


# ----------------------------------------------------------------------------- KV cache
@dataclass(frozen=True)
class KVLayerSplit:
    """KV-cache bytes per token per GPU, split by attention kind (whole model, ``pp = 1``).

    Attributes
    ----------
    full_layers, sliding_layers : int
        Number of full-attention and sliding-window layers.
    full_bytes_per_token, sliding_bytes_per_token : float
        K+V (or MLA latent) bytes one token occupies on one GPU in all full-attention layers
        together (grows with the whole sequence) and in all sliding layers together (up to
        ``sliding_window`` tokens).
    sliding_window : int or None
        Tokens a sliding layer keeps.
    """

    full_layers: int
    sliding_layers: int
    full_bytes_per_token: float
    sliding_bytes_per_token: float
    sliding_window: int | None


def _kv_layer_bytes(arch: Architecture, kv_cache_dtype, dtype, tp) -> dict[int, np.ndarray]:
    """K+V (MLA: latent) bytes per token of each KV-holding layer on one GPU, broadcast over ``tp``.

    Layers of one shape share the array; Gemma-4's global layers have their own KV heads and
    head size (:meth:`Architecture.attention_shape`). K and V are both cached there even when
    K is reused as V (vLLM's ``AttentionSpec`` page holds K and V for every attention layer).
    """
    elem = kv_cache_bytes_per_element(kv_cache_dtype, resolve_dtype(dtype, arch))
    if arch.is_mla:
        latent = np.broadcast_to(np.asarray(elem * (arch.kv_lora_rank + arch.qk_rope_head_dim), dtype=float),
                                 np.shape(tp)) * 1.0
        return {i: latent for i in arch.kv_layers}
    by_shape: dict[tuple[int, int], np.ndarray] = {}
    out = {}
    for i in arch.kv_layers:
        kv_heads, head_dim, _ = arch.attention_shape(i)
        if (kv_heads, head_dim) not in by_shape:
            by_shape[(kv_heads, head_dim)] = 2.0 * _ceil_div(kv_heads, tp) * head_dim * elem
        out[i] = by_shape[(kv_heads, head_dim)]
    return out


def kv_bytes_per_layer(arch: Architecture, *, kv_cache_dtype: str = "auto", dtype: str = "bfloat16",
                       tp: int = 1) -> dict[int, float]:
    """K+V (MLA: latent) bytes one token occupies in each KV-holding layer on one GPU.

    Parameters are those of :func:`kv_bytes_per_token` (scalar ``tp``).

    Returns
    -------
    dict
        Layer index -> bytes per token; linear-attention / Mamba layers are absent.

    Examples
    --------
    >>> from fitting.data.registry import resolve_model
    >>> kv_bytes_per_layer(resolve_model("meta-llama/Llama-3.1-8B").architecture)[0]
    4096.0
    """
    return {i: float(np.asarray(v)) for i, v in _kv_layer_bytes(arch, kv_cache_dtype, dtype, int(tp)).items()}


def kv_bytes_per_token(arch: Architecture, *, kv_cache_dtype: str = "auto", dtype: str = "bfloat16", tp=1, pp=1):
    """KV-cache bytes one token occupies on one GPU, counting **every** layer at full rate.

    Parameters
    ----------
    arch : Architecture
    kv_cache_dtype : str, default "auto"
        ``auto`` (= ``dtype``), ``float16``, ``bfloat16``, ``float32``, ``fp8`` /
        ``fp8_e4m3`` / ``fp8_e5m2``, llama.cpp ``q8_0`` (8.5 bits) / ``q4_0`` (4.5 bits).
    dtype : str, default "bfloat16"
        Model dtype (used by ``auto``; ``auto`` here = the checkpoint's torch_dtype).
    tp, pp : int or array of int

    Returns
    -------
    float or ndarray
        Bytes per token per GPU on the largest pipeline stage.

    Notes
    -----
    MHA/GQA/MQA: :math:`2 \\cdot L_{stage} \\cdot \\lceil n_{kv}/tp \\rceil \\cdot d_{head} \\cdot b`
    (KV heads replicated when ``tp > n_kv``). MLA: :math:`L_{stage} (r_{kv} + d_{rope}) b`,
    not divided by ``tp`` (every rank holds the full latent). :math:`L_{stage}` counts the
    layers that hold a KV cache (:attr:`Architecture.kv_layers`): the linear-attention and
    Mamba layers of a hybrid stack keep a fixed-size state instead.

    This is the *full-attention* rate: sliding-window layers are counted as if they kept
    every token, which is how vLLM converts its KV pool into the "GPU KV cache size:
    N tokens" it prints. :func:`kv_cache_bytes` caps sliding layers at the window for a
    given length; :func:`kv_bytes_per_token_split` gives the per-kind split.

    Examples
    --------
    >>> from fitting.data.registry import resolve_model
    >>> kv_bytes_per_token(resolve_model("meta-llama/Llama-3.1-8B").architecture)
    131072.0
    """
    tp_a, pp_a = np.broadcast_arrays(_int_array(tp, "tp"), _int_array(pp, "pp"))
    per_layer = _kv_layer_bytes(arch, kv_cache_dtype, dtype, tp_a)
    worst = np.zeros(tp_a.shape)
    for p in np.unique(pp_a):
        mask = pp_a == p
        for a, b in _stage_bounds(arch.num_layers, int(p)):
            stage = sum((per_layer[i][mask] for i in range(a, b) if i in per_layer), np.zeros(int(mask.sum())))
            worst[mask] = np.maximum(worst[mask], stage)
    return _out(worst)


def kv_bytes_per_token_split(arch: Architecture, *, kv_cache_dtype: str = "auto", dtype: str = "bfloat16",
                             tp: int = 1) -> KVLayerSplit:
    """Per-token KV bytes on one GPU split into full-attention and sliding-window layers.

    Parameters are those of :func:`kv_bytes_per_token` (scalar ``tp``; whole model).

    Returns
    -------
    KVLayerSplit
    """
    per_layer = _kv_layer_bytes(arch, kv_cache_dtype, dtype, int(tp))
    sliding = set(arch.sliding_layers)
    full_b = float(sum(float(v) for i, v in per_layer.items() if i not in sliding))
    slide_b = float(sum(float(v) for i, v in per_layer.items() if i in sliding))
    return KVLayerSplit(arch.num_full_layers, arch.num_sliding_layers, full_b, slide_b, arch.sliding_window)


def _round_up(n, block):
    if block is None:
        return np.asarray(n, dtype=float)
    return _ceil_div(n, block) * block


def kv_cache_bytes(arch: Architecture, *, num_tokens, kv_cache_dtype: str = "auto", dtype: str = "bfloat16",
                   tp=1, pp=1, block_size: int | None = None, num_seqs=1):
    """KV-cache bytes on one GPU for ``num_seqs`` sequences of ``num_tokens`` tokens each.

    Parameters
    ----------
    arch : Architecture
    num_tokens : int or array
        Tokens per sequence (prompt + generated).
    kv_cache_dtype, dtype, tp, pp
        As in :func:`kv_bytes_per_token`.
    block_size : int, optional
        Paged-cache block size (vLLM 16): each sequence is rounded up to whole blocks.
    num_seqs : int or array, default 1

    Returns
    -------
    float or ndarray
        Bytes per GPU (largest pipeline stage).

    Notes
    -----
    Full-attention layers hold ``round_up(num_tokens, block)`` tokens per sequence,
    sliding-window layers ``round_up(min(num_tokens, window), block)``:

    .. math:: KV = n_{seq}\\, b_{layer} \\big( L_{full} T + L_{slide} \\min(T, W) \\big)

    Examples
    --------
    >>> from fitting.data.registry import resolve_model
    >>> a = resolve_model("meta-llama/Llama-3.1-8B").architecture
    >>> kv_cache_bytes(a, num_tokens=1024, kv_cache_dtype="fp8")  # 0.067 GB
    67108864.0
    """
    tokens = np.asarray(num_tokens)
    if np.any(tokens < 0):
        raise ValueError(f"num_tokens: must be >= 0, got {num_tokens!r}")
    tp_a, pp_a, tok_a, seq_a = np.broadcast_arrays(_int_array(tp, "tp"), _int_array(pp, "pp"), tokens,
                                                   np.asarray(num_seqs))
    per_layer = _kv_layer_bytes(arch, kv_cache_dtype, dtype, tp_a)  # linear-attention / Mamba: none
    t_full = _round_up(tok_a, block_size)
    window = arch.sliding_window
    t_slide = _round_up(np.minimum(tok_a, window), block_size) if window else t_full
    sliding = set(arch.sliding_layers)
    worst = np.zeros(tp_a.shape)
    for p in np.unique(pp_a):
        mask = pp_a == p
        best = np.zeros(int(mask.sum()))
        for a, b in _stage_bounds(arch.num_layers, int(p)):
            stage = np.zeros(int(mask.sum()))
            for i in range(a, b):
                if i in per_layer:
                    stage = stage + per_layer[i][mask] * (t_slide[mask] if i in sliding else t_full[mask])
            best = np.maximum(best, stage)
        worst[mask] = best
    return _out(worst * seq_a)


# ----------------------------------------------------------------------------- activations
def _mlp_width(arch: Architecture) -> float:
    """Per-token intermediate width of the widest MLP (MoE: k routed experts + shared)."""
    dense = arch.intermediate_size if (not arch.is_moe or arch.dense_layers) else 0
    moe = 0
    if arch.is_moe:
        moe = arch.num_experts_per_tok * arch.moe_intermediate_size + (arch.shared_expert_intermediate_size or 0)
    return float(max(dense, moe))


#: vLLM sampler: fp32 tensors of shape (rows, vocab) live at the sampler's peak besides the
#: logits in the model dtype (see :func:`activation_bytes`).
VLLM_SAMPLER_FP32_COPIES = 3


def _vllm_activation_parts(arch: Architecture, *, T, rows, b: int, tp):
    """(forward peak, sampler-stage peak) of vLLM's profiling run in bytes per GPU."""
    h, V = arch.hidden_size, arch.vocab_size
    c_i = 3.0 if (mlp_is_gated(arch) or arch.is_moe) else 2.0
    forward = T * (2 * h + c_i * _mlp_width(arch) / tp) * b
    sampler = T * h * b + rows * V * (b + 4.0 * VLLM_SAMPLER_FP32_COPIES)
    return forward, sampler


def activation_bytes(arch: Architecture, *, framework: str, batch_size, seq_len, max_num_batched_tokens=None,
                     dtype: str = "bfloat16", tp=1, attn_implementation: str | None = None,
                     logits_all_positions: bool | None = None, sampler: bool = True):
    r"""First-order activation memory of one forward pass, per GPU (bytes).

    An *input* to the fitted overhead model, not a replacement for it: it captures how
    activations scale with the workload, the fit absorbs allocator and kernel details.

    Parameters
    ----------
    arch : Architecture
    framework : str
        ``vllm`` (vLLM's profiling run), ``sglang`` / ``trtllm`` / ``tgi`` (a forward pass
        over a token budget), ``transformers`` (``pytorch``), ``llamacpp``.
    batch_size : int or array
        vLLM / pool frameworks: ``max_num_seqs`` (rows of the sampler's logits; vLLM V1's
        default is 1024 on GPUs with >= 70 GiB other than the A100, else 256; the caller
        chooses); transformers: prompts per batch; llama.cpp: ``n_ubatch`` (tokens per
        micro-batch).
    seq_len : int or array
        vLLM: ``max_model_len`` (used when ``max_num_batched_tokens`` is None);
        transformers: prompt length; llama.cpp: ``n_ctx``.
    max_num_batched_tokens : int or array, optional
        vLLM token budget of the profiling forward.
    dtype : str
        Activation dtype.
    tp : int or array
        Divides the column-parallel widths (MLP / attention heads); hidden states and, in
        vLLM, the sampler's logits are replicated on every rank.
    attn_implementation : str, optional
        transformers: ``eager`` adds the materialised score matrices (default ``sdpa``);
        llama.cpp: ``flash`` removes the KQ scratch (default: no flash attention).
    logits_all_positions : bool, optional
        transformers: float32 logits for every prompt position (True, the default: what
        ``generate`` did before transformers 4.45) or only the last one (False).
    sampler : bool, default True
        vLLM: the GPU runs the dummy sampler (the last pipeline stage does; ``False`` for
        the other stages, whose peak is the forward pass alone).

    Returns
    -------
    float or ndarray

    Notes
    -----
    With :math:`h` hidden, :math:`I` the widest per-token MLP width (MoE: ``k x
    moe_intermediate + shared``), :math:`c_I = 3` for gated MLPs (gate/up output + product)
    and 2 otherwise, :math:`b` the dtype bytes and :math:`V` the vocabulary:

    * **vLLM** (``framework="vllm"``). The profiling run (``profile_run``) is a dummy
      forward over :math:`T` = ``max_num_batched_tokens`` tokens (else
      ``batch_size x seq_len``) split into :math:`R = \min(B, T)` requests, followed by a
      dummy sampler run on the last token of each request. The printed "activation peak"
      (torch peak allocation during the profile) is the larger of the two stages:

      .. math:: A = \max\big(T (2h + c_I I / tp)\, b,\;
                T h b + R V (b + 4 n_{32})\big), \quad n_{32} = 3

      *Forward*: the residual stream and the layer input/output (:math:`2h` per token,
      replicated across TP ranks) plus the column-parallel MLP intermediates (gate/up
      output and activation, split by ``tp``). *Sampler*: the forward's hidden states
      are still held (:math:`T h b`); ``compute_logits`` gathers the full vocabulary on
      every TP rank (:math:`R V b`, not divided by ``tp``) and the sampler works on fp32
      tensors of the same shape: the fp32 logits, the softmax probabilities and the
      exponential noise of random sampling (or the sorted copy of the top-k/top-p path)
      (``VLLM_SAMPLER_FP32_COPIES`` = 3).

      Evidence (``profiles/public/vllm``): the activation peak does not change with
      ``tp`` at a fixed token budget: Qwen2.5-7B-Instruct 2.21 GiB at tp 1/2/4
      (``vllm-qwen-qwen2-5-7b-instruct-5e18c4c204``, ``-e922906811``, ``-7754c5a3a9``),
      Llama-3.1-8B-Instruct 1.89 GiB at tp 1/2/4 (``vllm-meta-llama-llama-3-1-8b-
      instruct-33e1cc15aa``, ``-87693cfa2c``, ``-0f5c8260ad``; vLLM 0.19, H100,
      ``max_num_batched_tokens`` 8192, default ``max_num_seqs`` 1024) and
      Meta-Llama-3-8B 1.26 GiB at tp 1/2 (V0 engine; ``vllm-meta-llama-meta-llama-3-8b-
      95edb09895``, ``-3c76dd4422``), so the peak is a tp-independent term, not the
      (tp-split) forward.
      It scales with the vocabulary, not the MLP: Qwen3-8B (:math:`I` = 12288) and
      Qwen2.5-7B (:math:`I` = 18944), both :math:`V \approx 152k`, print the same
      2.21 GiB, Llama-3.1-8B (:math:`V` = 128256) 1.89 GiB: beyond :math:`T h b` that is
      14.8-14.9 B per logit element in all three (:math:`b + 4 n_{32}` = 14 B;
      measured/physics 1.06-1.07). The pipeline-parallel records of the same report,
      whose printed rank runs no sampler, show the forward stage alone: 1.05 / 1.10 GiB
      (``vllm-meta-llama-llama-3-1-8b-instruct-47083f4ad3`` pp=4, ``-dfef885293`` pp=2)
      and 0.96 GiB (``vllm-qwen-qwen3-8b-153c2a870e`` pp=3) against 0.78 / 0.69 GiB of
      the forward term (ratio 1.35-1.4, left to the fit); the two stages do not add (a
      sum would exceed the tp=1 records by 0.7-0.8 GiB and fall with ``tp``).

      Builds differ in the sampler's temporaries: vLLM 0.17-0.19 use 14.6-14.9 B per
      logit element (Qwen3-14B ``vllm-qwen-qwen3-14b-f47d41d188``, ``-daf4773e7e``),
      vLLM 0.15/0.16 (``-b071c89e75``, ``-ca19e5233f``, 5.64 GiB) and the V0 engine
      (Meta-Llama-3-8B above, 256 rows) 38-39 B: 24 B more, as much as six more fp32
      copies (plausibly the sorted values and int64 indices of the PyTorch top-k/top-p
      path and fp32 logprobs; not traced per build). The formula follows
      current builds; the fit's sampler term (multiples of :math:`R V \cdot 4` B) absorbs
      the older ones. The caller supplies :math:`B`: vLLM V1 defaults ``max_num_seqs`` to
      1024 on GPUs with >= 70 GiB other than the A100 (``EngineArgs`` batch defaults),
      else 256.
    * other pool frameworks (SGLang, TRT-LLM, TGI): :math:`T` as above;
      :math:`A = T (2h + c_I I / tp) b + \min(B, T) V \cdot 4`.
    * transformers: :math:`T = B \cdot S`; :math:`A = T (2h + c_I I) b + B S' V \cdot 4`
      with :math:`S' = S` (all positions) or 1, plus eager scores
      :math:`2 B n_{heads} S^2 b`.
    * llama.cpp: :math:`U` = ``n_ubatch``; :math:`A = U V 4 + U (2h + c_I I) 4
      + [\text{no flash}]\, U \cdot n_{ctx} \cdot n_{heads} \cdot 4` (f32 compute buffer).

    Examples
    --------
    >>> from fitting.data.registry import resolve_model
    >>> a = resolve_model("meta-llama/Llama-3.1-8B").architecture
    >>> [round(activation_bytes(a, framework="vllm", batch_size=1024, seq_len=8192,
    ...                         max_num_batched_tokens=8192, tp=t) / 2**30, 2) for t in (1, 2, 4)]
    [1.77, 1.77, 1.77]
    """
    try:
        kind = FRAMEWORK_KINDS[str(framework).lower()]
    except KeyError:
        raise ValueError(f"unknown framework {framework!r}; expected one of {sorted(FRAMEWORK_KINDS)}") from None
    b = dtype_bytes(resolve_dtype(dtype, arch))
    h, V, heads = arch.hidden_size, arch.vocab_size, arch.num_attention_heads
    c_i = 3.0 if (mlp_is_gated(arch) or arch.is_moe) else 2.0
    width = _mlp_width(arch)
    B = np.asarray(batch_size, dtype=float)
    S = np.asarray(seq_len, dtype=float)
    if np.any(B < 1) or np.any(S < 1):
        raise ValueError("batch_size and seq_len must be >= 1")
    if kind in ("vllm", "pool"):
        T = B * S if max_num_batched_tokens is None else np.asarray(max_num_batched_tokens, dtype=float)
        tp_a = np.asarray(tp, dtype=float)
        if kind == "vllm":
            forward, samp = _vllm_activation_parts(arch, T=T, rows=np.minimum(B, T), b=b, tp=tp_a)
            return _out(np.maximum(forward, samp) if sampler else forward * np.ones_like(samp))
        out = T * (2 * h + c_i * width / tp_a) * b + np.minimum(B, T) * V * 4.0
        return _out(out)
    if kind == "transformers":
        T = B * S
        all_pos = True if logits_all_positions is None else bool(logits_all_positions)
        out = T * (2 * h + c_i * width) * b + B * (S if all_pos else 1.0) * V * 4.0
        if (attn_implementation or "sdpa").lower() == "eager":
            out = out + 2.0 * B * heads * S**2 * b
        return _out(out)
    # llama.cpp: f32 compute buffer sized by the micro-batch
    U = B
    out = U * V * 4.0 + U * (2 * h + c_i * width) * 4.0
    if (attn_implementation or "").lower() not in ("flash", "flash_attn", "fa"):
        out = out + U * S * heads * 4.0
    return _out(out)
