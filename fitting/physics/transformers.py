"""Peak-memory mechanics of a Hugging Face transformers run, with the transformers version as an input.

Pure functions: an :class:`~fitting.physics.architecture.Architecture`, the workload and the
settings in, **bytes** out (per GPU, weights excluded: they are exact physics elsewhere,
:func:`fitting.physics.memory.weight_bytes_per_gpu`). Nothing here imports torch or
transformers; every rule names the file it was read in and the releases it was seen in.
Sources were read in the released wheels (``pip download --no-deps transformers==X``) of
4.35.2, 4.36.2, 4.38.2, 4.41.2, 4.42.4, 4.44.2, 4.45.2, 4.46.3, 4.47.1, 4.50.0, 4.53.3,
4.55.4, 4.56.2, 5.0.0, 5.10.0 and 5.24.0: "4.42-5.24" means seen in every release read in
that range, and a change is dated by the first release read that has it.

The model is the Llama-family decoder as ``models/llama/modeling_llama.py`` writes it
(Llama, Mistral, Qwen2/3, Gemma share the layout: RMSNorm, RoPE, q/k/v/o projections,
a gated or plain MLP, ``lm_head``). A run's peak is the largest **moment**: a set of
tensors alive at the same time. :func:`transformers_peak_bytes` evaluates every moment of
one forward (at its last layer, where the KV cache of every earlier layer is already held)
and of ``generate``'s bookkeeping around it, and returns the largest with its parts.

Moments (``T = batch x q`` tokens in the forward, ``L`` the key/value length after the
cache update, ``b`` bytes of the model dtype; the KV cache of all layers, the previous
step's logits kept by ``generate`` and the int64 bookkeeping are in every moment):

* ``attention``: the residual stream (input embeddings, layer input, normed input:
  ``3 T h b``), the rotated query ``T H d b``, ``repeat_kv`` copies of the layer's keys and
  values where the kernel needs them (``2 B H L d b``), the eager mask (``B q L b``) and the
  scores (:func:`attention_score_bytes`);
* ``mlp``: four ``T h b`` residual tensors (embeddings, layer input, post-attention
  residual, normed input), the MLP intermediates (:func:`mlp_intermediate_bytes`) and,
  with eager attention from 4.48, the layer's attention weights (``B H q L b``), which the
  decoder layer keeps until it returns;
* ``norm``: the RMSNorm's float32 temporaries (``8 T h`` bytes) on three residual tensors;
* ``lm_head``: the final hidden states and the logits (:func:`logits_bytes`);
* ``sampling``: ``generate``'s float32 copy of the last position and the logits
  processors' outputs beside the model's logits (:func:`generate_logit_copies`).

The prefill is one forward over the prompt (``q = S``, ``L = S``); a decode step is one
token (``q = 1``) against ``L = S + t``. ``generate`` with ``N`` new tokens runs the prefill
and ``N - 1`` decode forwards (the last token is never fed back), so the decode peak is at
the last step, or, before 4.42, possibly at the first one (the prefill's logits are still
held then, see :func:`generate_logit_copies`). ``peak = max(prefill, decode)``.

What is *not* here: weights, the CUDA context and allocator rounding/fragmentation (the
fitted overhead's job), and kernels' internal workspaces that no tensor owns (cuBLAS
workspace: :func:`cublas_workspace_bytes`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from .architecture import Architecture
from .memory import resolve_dtype
from .parameters import mlp_is_gated
from .quantization import dtype_bytes

__all__ = [
    "TRANSFORMERS_NEWEST_VERIFIED",
    "CACHE_CLASSES",
    "PhasePeak",
    "TransformersPeak",
    "parse_version",
    "attention_score_bytes",
    "sdpa_uses_native_gqa",
    "kv_copies_at_decode",
    "load_transient_bytes",
    "logits_bytes",
    "generate_logit_copies",
    "mlp_intermediate_bytes",
    "dequant_buffer_bytes",
    "cublas_workspace_bytes",
    "transformers_peak_bytes",
]

#: Newest transformers release these rules were checked against.
TRANSFORMERS_NEWEST_VERIFIED = (5, 24, 0)

#: Cache classes understood by :func:`transformers_peak_bytes`.
CACHE_CLASSES = ("dynamic", "static", "offloaded", "legacy")

_VERSION_RE = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(version) -> tuple[int, int, int]:
    """``(major, minor, patch)`` of a transformers version as printed (``"4.35.2"``,
    ``"4.33.0.dev0"``, ``"v5.24.0"``) or a tuple.

    >>> parse_version("4.33.0.dev0"), parse_version((4, 45))
    ((4, 33, 0), (4, 45, 0))
    """
    if isinstance(version, tuple):
        return tuple(int(x) for x in (tuple(version) + (0, 0, 0))[:3])
    m = _VERSION_RE.match(str(version))
    if not m:
        raise ValueError(f"transformers version {version!r} is not of the form X.Y[.Z]")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


# ----------------------------------------------------------------------------- result types
@dataclass(frozen=True)
class PhasePeak:
    """The largest moment of one phase (``prefill`` or ``decode``), bytes per GPU.

    ``total`` is the sum of the parts (all alive at ``moment``): ``kv`` the KV cache
    (every copy alive then), ``logits`` the logits and ``generate``'s float32 copies,
    ``attention`` scores, softmax, mask and ``repeat_kv`` copies, ``hidden`` the residual
    stream, query and normalisation temporaries, ``mlp`` the MLP intermediates,
    ``dequant`` transient dequantised weights, ``bookkeeping`` generate's int64 tensors.
    ``moments`` maps every moment evaluated to its total.
    """

    phase: str
    moment: str
    kv: float
    logits: float
    attention: float
    hidden: float
    mlp: float
    dequant: float
    bookkeeping: float
    kv_len: int
    moments: dict = field(default_factory=dict, compare=False)

    @property
    def total(self) -> float:
        return self.kv + self.logits + self.attention + self.hidden + self.mlp + self.dequant + self.bookkeeping


@dataclass(frozen=True)
class TransformersPeak:
    """Peak memory above the weights of one transformers run (bytes per GPU).

    ``peak = max(prefill.total, decode.total)``; the part fields are those of the phase that
    sets the peak (``phase``). ``persistent_buffers`` are quantization kernels' buffers
    allocated at load time (exllama ``temp_state``/``temp_dq``, exllamav2 scratch): they sit
    beside the weights in every phase and are *not* in ``peak``.
    """

    prefill: PhasePeak
    decode: PhasePeak | None
    persistent_buffers: float = 0.0
    version: tuple = ()

    @property
    def winner(self) -> PhasePeak:
        if self.decode is not None and self.decode.total > self.prefill.total:
            return self.decode
        return self.prefill

    @property
    def phase(self) -> str:
        return self.winner.phase

    @property
    def peak(self) -> float:
        return self.winner.total

    @property
    def kv(self) -> float:
        return self.winner.kv

    @property
    def logits(self) -> float:
        return self.winner.logits

    @property
    def attention(self) -> float:
        return self.winner.attention

    @property
    def hidden(self) -> float:
        return self.winner.hidden

    @property
    def mlp(self) -> float:
        return self.winner.mlp

    @property
    def dequant(self) -> float:
        return self.winner.dequant

    @property
    def activations(self) -> float:
        """``peak`` less the KV cache copies: what a fitted activation term would see."""
        return self.peak - self.kv


# ----------------------------------------------------------------------------- mechanisms
def attention_score_bytes(*, batch_size, num_heads, q_len, kv_len, dtype: str = "bfloat16",
                          attn_implementation: str = "sdpa", sdpa_backend: str = "flash") -> float:
    """Bytes of the attention-score tensors alive at one layer's softmax.

    * ``eager`` (``eager_attention_forward``, ``models/llama/modeling_llama.py``, 4.35-5.24):
      ``attn_weights = matmul(q, k^T) * scaling (+ mask)`` in the model dtype, then
      ``softmax(attn_weights, dtype=float32).to(q.dtype)``. At the cast the scores (``b``),
      the float32 softmax (4 B) and its cast (``b``) are alive: ``2b + 4`` bytes per score.
      In float32 the cast is a no-op and the scores plus the softmax give ``2 x 4 = 8``.
    * ``sdpa`` with the ``flash`` or ``efficient`` kernel (PyTorch
      ``scaled_dot_product_attention``): no score matrix; only the float32 log-sum-exp
      ``B x H x q`` (4 B each) beside the output.
    * ``sdpa`` on the ``math`` path: the scores and their softmax materialise; counted as
      float32 (``8`` bytes per score), on the assumption that PyTorch's math fallback
      upcasts half inputs (not read in the PyTorch source for this module).

    >>> attention_score_bytes(batch_size=2, num_heads=8, q_len=512, kv_len=512,
    ...                       dtype="bfloat16", attn_implementation="eager") / 2**20
    32.0
    """
    b = dtype_bytes(dtype)
    n = float(batch_size) * num_heads * q_len * kv_len
    impl = str(attn_implementation).lower()
    if impl == "eager":
        return n * (2 * b + 4 if b < 4 else 2 * b)
    if impl == "sdpa":
        if str(sdpa_backend).lower() == "math":
            return n * 8.0
        return float(batch_size) * num_heads * q_len * 4.0
    if impl.startswith("flash"):
        return float(batch_size) * num_heads * q_len * 4.0
    raise ValueError(f"attn_implementation {attn_implementation!r}: expected eager, sdpa or flash_attention_2")


def sdpa_uses_native_gqa(version, *, has_mask: bool, q_len: int, torch_at_least_2_5: bool = True) -> bool:
    """True when transformers' SDPA path attends a GQA model without ``repeat_kv`` copies.

    ``integrations/sdpa_attention.py``: before 4.55 (4.36-4.53.3) ``repeat_kv`` always
    expands keys and values to every query head. From 4.55 (4.55.4-5.24) it passes
    ``enable_gqa=True`` instead when there is no mask (no padding, not a static cache) and
    torch >= 2.5. From 5.24 (absent in 5.10.0) a single-token query with a mask is packed
    per KV head (``pack_gqa``) instead of expanding the keys.

    >>> sdpa_uses_native_gqa("4.53.3", has_mask=False, q_len=1), sdpa_uses_native_gqa("5.24.0", has_mask=False, q_len=512)
    (False, True)
    """
    v = parse_version(version)
    if v < (4, 55, 0):
        return False
    if not has_mask and torch_at_least_2_5:
        return True
    return v >= (5, 24, 0) and q_len == 1


def kv_copies_at_decode(version, cache_class: str = "dynamic") -> float:
    """Copies of the full KV cache alive at a decode step's peak (beyond one layer's growth).

    * ``legacy`` tuples (4.35 and every release before 4.42 with its default
      ``generate``): each layer's ``torch.cat([past, new])`` builds a new tensor while
      ``generate`` still holds the previous step's cache in ``model_kwargs`` (and in the
      previous ``outputs``): the old and the new cache are both alive at the end of the
      forward: **2**. 4.36-4.41 convert the tuple into a ``DynamicCache`` per call
      (``DynamicCache.from_legacy_cache``), whose ``cat`` does not free the tuple's tensors:
      still 2. (The 2x per-sequence slope of the 4.35 optimum-benchmark sweeps.)
    * ``dynamic`` from 4.42 (``generate`` creates a ``DynamicCache`` itself,
      ``_prepare_cache_for_generation``; 4.42.4-5.24): the ``cat`` replaces one layer at a
      time, so only that layer's old keys (or values) coexist with the new: **1** (plus half
      a layer, counted in the moment).
    * ``static`` (``StaticCache``, ``index_copy_`` into a preallocated ``max_cache_len``
      tensor): **1**, of the full length from the prefill on.
    * ``offloaded`` (``DynamicCache(offloading=True)`` in 5.x, ``OffloadedCache`` 4.44-4.5x):
      the device holds the layer being computed and the prefetched next one:
      ``2 / num_layers`` of the cache (returned as the fraction ``-2``; see
      :func:`transformers_peak_bytes`).

    >>> kv_copies_at_decode("4.35.2"), kv_copies_at_decode("4.44.2"), kv_copies_at_decode("4.41.2", "dynamic")
    (2.0, 1.0, 2.0)
    """
    v = parse_version(version)
    c = str(cache_class).lower()
    if c == "legacy" or (c == "dynamic" and v < (4, 42, 0)):
        return 2.0
    if c in ("dynamic", "static"):
        return 1.0
    if c == "offloaded":
        return -2.0
    raise ValueError(f"cache_class {cache_class!r}: expected one of {CACHE_CLASSES}")


#: Causal-LM classes whose ``forward`` returns ``lm_head``'s output without ``logits.float()``
#: in 4.35-4.45 (``modeling_<type>.py`` of 4.35.2, 4.43.0 and 4.45.2 read: no upcast in
#: OPTForCausalLM, GPT2LMHeadModel, GPTNeoXForCausalLM, FalconForCausalLM,
#: GPTBigCodeForCausalLM, MptForCausalLM, BloomForCausalLM; Llama, Mistral, Mixtral, Qwen2,
#: Gemma, Phi, Phi3 and Starcoder2 upcast). Other types are taken to upcast, like Llama.
NO_LOGITS_UPCAST_MODEL_TYPES = frozenset({"opt", "gpt2", "gpt_neox", "falcon", "gpt_bigcode", "mpt", "bloom"})


def logits_upcast(model_type) -> bool:
    """Whether a model type's forward upcast its logits to float32 in 4.35-4.45."""
    return str(model_type or "").lower() not in NO_LOGITS_UPCAST_MODEL_TYPES


def logits_bytes(*, version, mode: str = "generate", batch_size, q_len, vocab_size, dtype: str = "bfloat16",
                 logits_to_keep=None, upcast: bool = True) -> tuple[float, float]:
    """``(held, transient)``: the model's logits and the upcast copy alive beside them.

    Positions projected by ``lm_head`` (``K``):

    * ``generate`` before 4.45 (4.35-4.44): every prompt position at the prefill (``K = S``);
      from 4.45 ``generate`` passes ``num_logits_to_keep=1`` (``logits_to_keep`` from 4.50)
      and the model projects the last position only (``K = 1``). A decode step has ``K = 1``.
    * a forward call keeps every position unless ``logits_to_keep`` says otherwise.

    Dtype: ``LlamaForCausalLM.forward`` upcasts with ``logits.float()`` in 4.35-4.45 (held in
    float32; the model-dtype output of ``lm_head`` is alive during the cast: ``transient``);
    from 4.46 the logits stay in the model dtype (the upcast is in the loss only). The model
    types of :data:`NO_LOGITS_UPCAST_MODEL_TYPES` never upcast there (``upcast=False``).

    >>> logits_bytes(version="4.35.2", batch_size=1, q_len=512, vocab_size=32000, dtype="float16")
    (65536000.0, 32768000.0)
    >>> logits_bytes(version="4.46.3", batch_size=1, q_len=512, vocab_size=32000, dtype="float16")
    (64000.0, 0.0)
    """
    v = parse_version(version)
    b = dtype_bytes(dtype)
    if logits_to_keep is None:
        keep = q_len if (mode == "forward" or v < (4, 45, 0)) else 1
    else:
        keep = q_len if int(logits_to_keep) == 0 else min(int(logits_to_keep), q_len)
    n = float(batch_size) * keep * vocab_size
    if v < (4, 46, 0) and upcast:
        return n * 4.0, (n * b if b < 4 else 0.0)
    return n * b, 0.0


def generate_logit_copies(version, *, processor_copies: int = 0) -> dict:
    """``generate``'s float32 ``batch x vocab`` tensors around a step, by version.

    Returns ``{"copy": c, "copy_transient": t, "carry": k, "carry_prefill_logits": bool}``:
    ``c`` copies of the last position made after the forward (float32 ``B x V``), ``t``
    extra model-dtype ``B x V`` copies alive while it is made, ``k`` float32 ``B x V`` tensors
    of the previous step alive through the next forward, and whether the prefill's whole
    logits tensor is still alive during the first decode forward.

    ``generation/utils.py`` (``greedy_search``/``sample``, ``_sample`` from 4.41):

    * 4.35-4.41: ``next_token_logits = outputs.logits[:, -1, :]`` is a view and ``outputs``
      is only rebound when the next forward returns: the previous step's logits (the whole
      prefill logits at the first decode step) stay alive: ``c = 0``,
      ``carry_prefill_logits = True``.
    * 4.42-4.44: ``.clone()`` and ``del outputs``: ``c = 1`` (the logits are float32 already).
    * 4.45: ``.clone().float()`` on float32 logits: ``c = 1``.
    * 4.46-4.50: ``.clone().float()`` on model-dtype logits: ``c = 1`` and the clone
      (``t = 1``) while the float32 copy is made.
    * 4.53-5.24: ``.to(copy=True, dtype=torch.float32)``: ``c = 1``.

    Each logits processor that writes a new tensor (``torch.where``, ``scatter``: e.g.
    ``MinNewTokensLengthLogitsProcessor``, repetition penalty, top-k) makes
    ``next_token_scores`` a separate float32 ``B x V`` tensor; the last one and the copy live
    until the next step reassigns them (``carry = 1 + [processor_copies > 0]``).
    """
    v = parse_version(version)
    p = 1 if processor_copies > 0 else 0
    if v < (4, 42, 0):
        return {"copy": 0, "copy_transient": 0, "carry": 1 + p, "carry_prefill_logits": True}
    t = 1 if (4, 46, 0) <= v < (4, 53, 0) else 0
    return {"copy": 1, "copy_transient": t, "carry": 1 + p, "carry_prefill_logits": False}


def mlp_intermediate_bytes(arch: Architecture, *, tokens, dtype: str = "bfloat16", tp: int = 1) -> float:
    """MLP intermediates alive at once (``LlamaMLP.forward``, 4.35-5.24).

    ``down_proj(act_fn(gate_proj(x)) * up_proj(x))``: the gate output is freed when
    ``act_fn`` returns, so the activation, the up projection and their product are alive at
    the multiplication: ``3 T I b`` (gated); ``fc2(act(fc1(x)))``: ``2 T I b`` (plain).
    ``I`` is split by ``tp`` (``gate/up`` colwise in the model's ``_tp_plan``).

    >>> from fitting.physics.architecture import Architecture
    >>> a = Architecture.from_hf_config({"model_type": "llama", "hidden_size": 256, "intermediate_size": 704,
    ...     "num_hidden_layers": 2, "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 32000})
    >>> mlp_intermediate_bytes(a, tokens=512, dtype="bfloat16")
    2162688.0
    """
    b = dtype_bytes(dtype)
    width = _mlp_width(arch) / tp
    copies = 3 if (mlp_is_gated(arch) or arch.is_moe) else 2
    return float(tokens) * copies * math.ceil(width) * b


def _mlp_width(arch: Architecture) -> float:
    dense = arch.widest_dense_intermediate_size if (not arch.is_moe or arch.dense_layers) else 0
    moe = 0
    if arch.is_moe:
        moe = arch.num_experts_per_tok * arch.moe_intermediate_size + (arch.shared_expert_intermediate_size or 0)
    return float(max(dense, moe))


def _linear_shapes(arch: Architecture, tp: int) -> list[tuple[int, int]]:
    """(in, out) of the decoder's quantized linears per GPU (lm_head is left unquantized)."""
    H, G, d, h = arch.num_attention_heads, arch.num_kv_heads, arch.head_dim, arch.hidden_size
    I = int(_mlp_width(arch) if not arch.is_moe else (arch.moe_intermediate_size or arch.intermediate_size))
    hq, hkv, i = math.ceil(H / tp) * d, math.ceil(G / tp) * d, math.ceil(I / tp)
    return [(h, hq), (h, hkv), (hq, h), (h, i), (i, h)]


def dequant_buffer_bytes(arch: Architecture, *, quantization: str, tokens: int = 1, dtype: str = "float16",
                         max_input_length: int | None = None, act_order: bool = False, tp: int = 1,
                         compute_dtype: str | None = None) -> tuple[float, float]:
    """``(persistent, transient)`` bytes of a quantized kernel's dequantisation buffers.

    * ``gptq-exllama`` (AutoGPTQ ``autogptq_post_init``, ``auto_gptq/modeling/_utils.py``;
      transformers' GPTQ path through optimum): at load, per device,
      ``temp_state = zeros(max_input_len, max_inner_outer_dim)`` fp16 (act-order only;
      ``max_input_len`` = ``max_input_length`` or ``EXLLAMA_DEFAULT_MAX_INPUT_LENGTH`` 2048,
      1 without act-order, ``max_inner_outer_dim`` the largest in/out features) and
      ``temp_dq = zeros(1, max(qweight.numel() * 8))`` fp16 (= the largest ``in x out``).
    * ``gptq-exllamav2`` (``auto_gptq/nn_modules/qlinear/qlinear_exllamav2.py``): one
      scratch of ``max`` over layers of ``scratch_space_fixed() = in x out x 2 + 128 +
      out x 2048 x 8 x 4 + 128`` bytes (out padded to 32), allocated as ``scratch_bytes // 2``
      halves.
    * ``awq-gemm`` (AutoAWQ ``WQLinear_GEMM``, ``awq/modules/linear/gemm.py``): when
      ``x.shape[0] * x.shape[1] >= 1024`` (``FP16_MATMUL_HEURISTIC_CONDITION``) the weight
      is dequantised to fp16 (``in x out x 2``) before ``torch.matmul``: transient.
    * ``bnb-4bit`` (bitsandbytes ``MatMul4Bit.forward``, ``autograd/_functions.py``):
      ``linear(A, dequantize_4bit(B).to(A.dtype).t())`` unless ``A`` is a single token
      (``A.numel() == A.shape[-1]``: the fused ``gemv_4bit``): ``in x out`` in the compute
      dtype, plus the cast to the activation dtype when they differ: transient.

    The transient is the largest linear's buffer (one linear runs at a time).

    >>> from fitting.physics.architecture import Architecture
    >>> a = Architecture.from_hf_config({"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
    ...     "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000})
    >>> [x / 2**20 for x in dequant_buffer_bytes(a, quantization="gptq-exllama", act_order=True)]
    [129.0, 0.0]
    """
    q = str(quantization).lower()
    shapes = _linear_shapes(arch, tp)
    biggest = max(i * o for i, o in shapes)
    if q in ("gptq-exllama", "exllama", "gptq-exllamav1", "exllamav1"):
        inner_outer = max(max(i, o) for i, o in shapes) if act_order else 1
        length = (max_input_length or 2048) if act_order else 1
        return float(length * inner_outer * 2 + biggest * 2), 0.0
    if q in ("gptq-exllamav2", "exllamav2"):
        scratch = max(i * (o + (-o % 32)) * 2 + 128 + (o + (-o % 32)) * 2048 * 8 * 4 + 128 for i, o in shapes)
        return float((scratch // 2) * 2), 0.0
    if q in ("awq", "awq-gemm"):
        return 0.0, (float(biggest * 2) if tokens >= 1024 else 0.0)
    if q in ("bnb-4bit", "bnb4", "nf4", "fp4", "bitsandbytes-4bit"):
        if tokens == 1:
            return 0.0, 0.0
        cb = dtype_bytes(compute_dtype or dtype)
        ab = dtype_bytes(dtype)
        return 0.0, float(biggest * (cb + (ab if ab != cb else 0)))
    raise ValueError(f"quantization {quantization!r}: expected gptq-exllama, gptq-exllamav2, awq-gemm or bnb-4bit")


def load_transient_bytes(arch: Architecture, *, tied_copies=(), dtype: str = "bfloat16", tp: int = 1) -> float:
    """Bytes ``from_pretrained`` holds beyond the weights at its peak (per GPU).

    A checkpoint that stores a tensor the model ties to another (``lm_head.weight`` of a
    tied-embedding model, which some quantizers save separately) is loaded twice: transformers
    4.46 ``_load_pretrained_model`` ties the weights, then ``_load_state_dict_into_meta_model``
    hands every key the checkpoint holds to accelerate's ``set_module_tensor_to_device``, which
    puts a new tensor on the module (breaking the tie), and only the final
    ``model.tie_weights()`` drops it (``modeling_utils.py``, 4.46.3). Until then the copy lives
    beside the weights. A peak counter that is never reset after loading therefore reads
    ``max(W + copies, W + run peak)``.

    Parameters
    ----------
    arch : Architecture
    tied_copies : iterable of str
        Tensor names (:attr:`fitting.data.registry.ModelEntry.checkpoint_tied_copies`);
        ``lm_head.weight`` is ``vocab x hidden`` in the model dtype.
    dtype : str
    tp : int
        Tensor parallel degree (the vocab dimension is split).

    Examples
    --------
    >>> from fitting.physics.architecture import Architecture
    >>> a = Architecture.from_hf_config({"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
    ...     "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
    ...     "tie_word_embeddings": True})
    >>> round(load_transient_bytes(a, tied_copies=["lm_head.weight"], dtype="float16") / 2**30, 4)
    0.2536
    """
    total = 0.0
    for name in tied_copies:
        if name != "lm_head.weight":
            raise ValueError(f"tied copy {name!r}: only 'lm_head.weight' is sized")
        total += math.ceil(arch.vocab_size / tp) * arch.hidden_size * dtype_bytes(resolve_dtype(dtype, arch))
    return float(total)


def cublas_workspace_bytes(*, compute_capability: tuple[int, int] = (9, 0), config: str | None = None) -> int:
    """cuBLAS workspace of one handle/stream as PyTorch sizes it (``getChosenWorkspaceSize``).

    ``aten/src/ATen/cuda/CublasHandlePool.cpp`` parses ``CUBLAS_WORKSPACE_CONFIG``
    (``:SIZE_KiB:COUNT`` pairs, summed); without it the default is ``:4096:2:16:8``
    (8 MiB + 128 KiB), ``:4096:8`` (32 MiB) on Hopper (sm90+), and the workspace comes from
    the caching allocator (inside ``memory_reserved``). These defaults are as recalled
    from that file, **not re-read against a PyTorch release** for this module: pass
    ``config`` where the value matters.

    >>> cublas_workspace_bytes(compute_capability=(8, 0)), cublas_workspace_bytes(config=":4096:8")
    (8519680, 33554432)
    """
    if config is None:
        config = ":4096:8" if tuple(compute_capability) >= (9, 0) else ":4096:2:16:8"
    nums = [int(x) for x in config.strip(":").split(":") if x]
    if len(nums) % 2:
        raise ValueError(f"CUBLAS_WORKSPACE_CONFIG {config!r}: expected :SIZE:COUNT pairs")
    return sum(nums[i] * 1024 * nums[i + 1] for i in range(0, len(nums), 2))


# ----------------------------------------------------------------------------- composition
@dataclass(frozen=True)
class _Dims:
    B: int
    H: int
    G: int
    d: int
    h: int
    V: int
    nL: int
    b: int


def _phase(dims: _Dims, arch, *, q: int, L: int, phase: str, version, mode: str, attn: str, sdpa_backend: str,
           dtype: str, logits_to_keep, quantization, quant_kw: dict, tp: int, processor_copies: int, prompt_len: int,
           positions_batched: bool, carry: float, kv_store: float, kv_update: float, keep_cache: bool,
           kv_len_attention: int, mask_present: bool) -> PhasePeak:
    """Every moment of one forward (at its last layer) and of generate's step around it."""
    B, H, G, d, h, V, nL, b = (dims.B, dims.H, dims.G, dims.d, dims.h, dims.V, dims.nL, dims.b)
    T = float(B) * q
    La = kv_len_attention
    kv = kv_store if keep_cache else 0.0
    own_kv = 0.0 if keep_cache else 2.0 * B * G * L * d * b   # use_cache=False: this layer's keys/values only
    book = 0.0
    if mode == "generate":
        # position ids built from the attention mask; input_ids and attention_mask grown by cat
        book = 3.0 * B * prompt_len * 8 + (2.0 * B * L * 8 if phase == "decode" else 0.0)
    rope = 2.0 * (B if positions_batched else 1) * q * d * b
    mask = float(B) * q * La * (b if attn == "eager" else 1) if mask_present else 0.0
    res3 = (3.0 if nL > 1 else 2.0) * T * h * b      # embeddings, layer input, normed input
    query = T * H * d * b
    native = attn == "flash_attention_2" or (attn == "sdpa" and sdpa_uses_native_gqa(version, has_mask=mask_present,
                                                                                          q_len=q))
    rep = 0.0 if (H == G or native) else 2.0 * B * H * La * d * b
    kernel = "flash" if attn == "flash_attention_2" else attn
    scores = attention_score_bytes(batch_size=B, num_heads=H, q_len=q, kv_len=La, dtype=dtype,
                                   attn_implementation=kernel, sdpa_backend=sdpa_backend)
    fused = attn != "eager" and not (attn == "sdpa" and sdpa_backend == "math")
    if fused:
        scores += 2.0 * query    # the kernel's output and its transpose(1, 2).contiguous() copy
    parts = {}
    parts["attention"] = dict(kv=kv + own_kv, logits=carry, attention=scores + rep + mask,
                              hidden=res3 + query + rope, mlp=0.0, dequant=0.0, bookkeeping=book)
    parts["cache_update"] = dict(kv=kv + (kv_update if keep_cache else own_kv), logits=carry, attention=mask,
                                 hidden=res3 + query + rope, mlp=0.0, dequant=0.0, bookkeeping=book)
    deq = 0.0
    if quantization:
        deq = dequant_buffer_bytes(arch, quantization=quantization, tokens=int(T), dtype=dtype, tp=tp, **quant_kw)[1]
    res4 = (4.0 if nL > 1 else 3.0) * T * h * b      # + the post-attention residual
    # eager attention weights returned to the decoder layer (``hidden_states, _ = self.self_attn``)
    # stay alive through its MLP from 4.48 (4.50.0-5.24); 4.35-4.47 drop them
    # (``if not output_attentions: attn_weights = None``)
    kept = float(B) * H * q * La * b if (attn == "eager" and version >= (4, 48, 0)) else 0.0
    parts["mlp"] = dict(kv=kv, logits=carry, attention=mask + kept, hidden=res4 + rope,
                        mlp=mlp_intermediate_bytes(arch, tokens=T, dtype=dtype, tp=tp), dequant=deq, bookkeeping=book)
    parts["norm"] = dict(kv=kv, logits=carry, attention=mask + kept, hidden=res3 + 8.0 * T * h + rope, mlp=0.0,
                         dequant=0.0, bookkeeping=book)
    held, transient = logits_bytes(version=version, mode=mode, batch_size=B, q_len=q, vocab_size=V, dtype=dtype,
                                   logits_to_keep=logits_to_keep, upcast=logits_upcast(arch.text_model_type))
    parts["lm_head"] = dict(kv=kv, logits=carry + held + transient, attention=0.0, hidden=T * h * b, mlp=0.0,
                            dequant=0.0, bookkeeping=book)
    if mode == "generate":
        g = generate_logit_copies(version, processor_copies=processor_copies)
        p = 1 if processor_copies > 0 else 0
        row32 = float(B) * V * 4
        # the new float32 copy is made while the previous step's tensors are still referenced
        copy_m = carry + held + g["copy"] * row32 + g["copy_transient"] * float(B) * V * b
        # after the processors: the copy, the new scores and (until reassigned) the old scores
        old_scores = p * row32 if phase == "decode" else 0.0
        proc_m = held + g["copy"] * row32 + old_scores + p * row32 if p else 0.0
        parts["sampling"] = dict(kv=kv, logits=max(copy_m, proc_m), attention=0.0, hidden=0.0, mlp=0.0,
                                 dequant=0.0, bookkeeping=book)
    moments = {name: sum(ps.values()) for name, ps in parts.items()}
    best = max(moments, key=moments.get)
    return PhasePeak(phase=phase, moment=best, kv_len=int(L), moments=moments, **parts[best])


def transformers_peak_bytes(arch: Architecture, *, version, mode: str = "generate", batch_size: int,
                            prompt_len: int, new_tokens: int = 1, attn_implementation: str = "sdpa",
                            sdpa_backend: str = "flash", cache_class: str = "dynamic", dtype: str = "bfloat16",
                            logits_to_keep=None, quantization: str | None = None, tp: int = 1,
                            processor_copies: int = 0, use_cache: bool = True, padded: bool = False,
                            position_ids_batched: bool | None = None, max_input_length: int | None = None,
                            act_order: bool = False, compute_dtype: str | None = None) -> TransformersPeak:
    """Peak memory above the weights of a transformers ``forward`` or ``generate`` (bytes per GPU).

    Parameters
    ----------
    arch : Architecture
    version : str or tuple
        transformers version as printed (``"4.35.2"``, ``"5.24.0"``).
    mode : ``"generate"`` or ``"forward"``
        ``forward``: one call of the model on the prompt (a prefill benchmark); ``generate``:
        prefill plus ``new_tokens - 1`` decode forwards with ``generate``'s bookkeeping.
    batch_size, prompt_len, new_tokens : int
    attn_implementation : ``"eager"``, ``"sdpa"`` or ``"flash_attention_2"``
    sdpa_backend : ``"flash"``, ``"efficient"`` or ``"math"``
        PyTorch's kernel behind SDPA (flash/efficient: no score matrix).
    cache_class : ``"dynamic"`` (default), ``"static"``, ``"offloaded"`` or ``"legacy"``
        see :func:`kv_copies_at_decode`. Before 4.42 ``dynamic`` behaves as ``legacy``.
    dtype : str
        The model (activation) dtype.
    logits_to_keep : int, optional
        ``None``: the version's default (:func:`logits_bytes`); ``0``: every position;
        ``k``: the last ``k`` positions (``generate(..., logits_to_keep=0)`` turns 4.45+'s
        last-position projection off).
    quantization : str, optional
        ``gptq-exllama``, ``gptq-exllamav2``, ``awq-gemm``, ``bnb-4bit``
        (:func:`dequant_buffer_bytes`; with ``max_input_length``, ``act_order``,
        ``compute_dtype``).
    tp : int
        transformers' tensor parallel plan (``tp_plan="auto"``): heads, KV heads and the MLP
        width are split, the hidden states and the gathered logits are not.
    processor_copies : int
        Logits processors that write a new ``B x V`` tensor per step (0 for plain greedy).
    use_cache : bool
        ``forward`` mode: the model's default ``use_cache=True`` builds a ``DynamicCache``
        during a plain forward as well; False keeps only each layer's own keys and values.
    padded : bool
        Padded prompts: SDPA gets a boolean mask (and cannot use native GQA).
    position_ids_batched : bool, optional
        cos/sin are ``B x q x d`` when ``position_ids`` are given per sequence (``generate``
        builds them from the attention mask) and ``1 x q x d`` otherwise; default: True for
        ``generate``, False for ``forward``.

    Returns
    -------
    TransformersPeak

    Notes
    -----
    Composition: within a phase the parts of a moment **add** (they are alive together) and
    the moments **compete** (max); the phases compete as well. ``generate`` before 4.42
    evaluates the first decode step besides the last, because it still holds the prefill's
    logits then.

    Examples
    --------
    >>> from fitting.physics.architecture import Architecture
    >>> a = Architecture.from_hf_config({"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
    ...     "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 32000})
    >>> old = transformers_peak_bytes(a, version="4.35.2", batch_size=1, prompt_len=2048, new_tokens=2,
    ...                               attn_implementation="eager", dtype="float16")
    >>> new = transformers_peak_bytes(a, version="4.46.3", batch_size=1, prompt_len=2048, new_tokens=2,
    ...                               attn_implementation="eager", dtype="float16")
    >>> old.phase, round(old.logits / 2**20), new.phase, round(new.logits / 2**20)
    ('decode', 250, 'prefill', 0)
    """
    v = parse_version(version)
    mode = str(mode).lower()
    if mode not in ("generate", "forward"):
        raise ValueError(f"mode {mode!r}: expected 'generate' or 'forward'")
    attn = str(attn_implementation).lower()
    if attn.startswith("flash"):
        attn = "flash_attention_2"
    elif attn not in ("eager", "sdpa"):
        raise ValueError(f"attn_implementation {attn_implementation!r}: expected eager, sdpa or flash_attention_2")
    cache_class = str(cache_class).lower()
    if cache_class not in CACHE_CLASSES:
        raise ValueError(f"cache_class {cache_class!r}: expected one of {CACHE_CLASSES}")
    if min(batch_size, prompt_len, new_tokens, tp) < 1:
        raise ValueError("batch_size, prompt_len, new_tokens and tp must be >= 1")
    dtype = resolve_dtype(dtype, arch)
    b = dtype_bytes(dtype)
    dims = _Dims(B=int(batch_size), H=math.ceil(arch.num_attention_heads / tp), G=math.ceil(arch.num_kv_heads / tp),
                 d=arch.head_dim, h=arch.hidden_size, V=arch.vocab_size, nL=arch.num_layers, b=b)
    if position_ids_batched is None:
        position_ids_batched = mode == "generate"
    quant_kw = dict(max_input_length=max_input_length, act_order=act_order, compute_dtype=compute_dtype)
    copies = kv_copies_at_decode(v, cache_class)
    S, N = int(prompt_len), int(new_tokens)
    static_len = S + N if cache_class == "static" else None
    common = dict(version=v, mode=mode, attn=attn, sdpa_backend=str(sdpa_backend).lower(), dtype=dtype,
                  logits_to_keep=logits_to_keep, quantization=quantization, quant_kw=quant_kw, tp=tp,
                  processor_copies=processor_copies, prompt_len=S, positions_batched=position_ids_batched)
    mask_present = attn == "eager" or (attn == "sdpa" and (padded or cache_class == "static"))
    layer = lambda n: 2.0 * dims.B * dims.G * n * dims.d * b  # noqa: E731  one layer's K and V at length n

    def kv_store(L, q):
        if cache_class == "static":
            return dims.nL * layer(static_len)
        if copies < 0:                       # offloaded: the current and the prefetched layer
            return min(2, dims.nL) * layer(L)
        old = (copies - 1) * dims.nL * layer(L - q) if copies > 1 else 0.0
        return dims.nL * layer(L) + old

    def kv_update(L, q):
        # torch.cat([old, new]) of one layer's keys: the old tensor is alive beside the new one
        if cache_class in ("static", "offloaded") or copies > 1 or L == q:
            return 0.0
        return 0.5 * layer(L - q)

    persistent = 0.0
    if quantization:
        persistent = dequant_buffer_bytes(arch, quantization=quantization, dtype=dtype, tp=tp, **quant_kw)[0]
    keep_cache = mode == "generate" or use_cache
    pre = _phase(dims, arch, q=S, L=S, phase="prefill", carry=0.0, kv_store=kv_store(S, S), kv_update=0.0,
                 keep_cache=keep_cache, kv_len_attention=static_len or S, mask_present=mask_present, **common)
    if mode == "forward" or N < 2:
        return TransformersPeak(prefill=pre, decode=None, persistent_buffers=persistent, version=v)
    g = generate_logit_copies(v, processor_copies=processor_copies)
    row32 = float(dims.B) * dims.V * 4
    candidates = []
    for t in sorted({N - 1} | ({1} if g["carry_prefill_logits"] else set())):
        L = S + t
        if g["carry_prefill_logits"]:
            prev_q = S if t == 1 else 1
            held_prev, _ = logits_bytes(version=v, mode=mode, batch_size=dims.B, q_len=prev_q, vocab_size=dims.V,
                                        dtype=dtype, logits_to_keep=logits_to_keep,
                                        upcast=logits_upcast(arch.text_model_type))
            carry = held_prev + (g["carry"] - 1) * row32
        else:
            carry = g["carry"] * row32
        candidates.append(_phase(dims, arch, q=1, L=L, phase="decode", carry=carry, kv_store=kv_store(L, 1),
                                 kv_update=kv_update(L, 1), keep_cache=True, kv_len_attention=static_len or L,
                                 mask_present=mask_present, **common))
    dec = max(candidates, key=lambda p: p.total)
    return TransformersPeak(prefill=pre, decode=dec, persistent_buffers=persistent, version=v)
