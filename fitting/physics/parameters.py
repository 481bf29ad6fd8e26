"""Parameter counting from an :class:`~fitting.physics.architecture.Architecture`.

The count is built from a *tensor inventory* (:func:`tensor_inventory`): every weight
tensor of the model with its shape, the layers it appears in, how tensor parallelism
splits it (the vLLM convention) and whether weight quantization touches it. The physics
(:mod:`fitting.physics.memory`) sizes weights from the same inventory, so counts and bytes can
never disagree.

What is counted, per family (``text_model_type``):

* embeddings, plus an untied LM head (``tie_word_embeddings`` false), plus learned
  position embeddings (OPT: ``max_position_embeddings + 2`` rows; GPT-2 / GPT-BigCode);
* attention: q/k/v/o with ``head_dim`` (explicit head_dim wins), GQA/MQA k/v widths,
  biases where the family has them (Qwen2 q/k/v; phi, Falcon ``bias``, OPT, GPT-2,
  GPT-BigCode, gpt-oss ``attention_bias``: q/k/v/o), q/k norms (Qwen3, Gemma-3, GLM-4.5
  ``use_qk_norm``: per head; OLMo-2: full width), gpt-oss attention sinks;
* MLA (DeepSeek-V2/V3, Kimi-K2): ``q_a_proj`` + ``q_a_layernorm`` + ``q_b_proj`` (or a plain
  ``q_proj`` when ``q_lora_rank`` is null), ``kv_a_proj_with_mqa`` (hidden -> kv_lora_rank +
  qk_rope_head_dim), ``kv_a_layernorm``, ``kv_b_proj`` (kv_lora_rank -> heads x (nope + v)),
  ``o_proj`` (heads x v_head_dim -> hidden);
* MLP: gated (gate/up/down, SwiGLU/GeGLU) or not (fc1/fc2: OPT, GPT-2, GPT-BigCode,
  GPT-NeoX, phi, Falcon), with biases where the family has them;
* MoE: routed experts (all resident), shared experts, router (+ router bias for gpt-oss,
  + ``e_score_correction_bias`` for DeepSeek-V3 / Kimi-K2 / GLM-4.5), Qwen2-MoE
  ``shared_expert_gate``, gpt-oss expert biases; the dense-layer pattern
  (``first_k_dense_replace``, ``mlp_only_layers``) uses ``intermediate_size``;
* norms: RMSNorm (weight) or LayerNorm (weight + bias) — 2 per layer by default, 4 for
  Gemma-2/3, 1 for phi and Falcon-7B's parallel attention, plus the final norm (none for
  post-LN OPT, ``do_layer_norm_before`` false: OPT-350m);
* OPT with ``word_embed_proj_dim`` < ``hidden_size`` (OPT-350m): embeddings and LM head at
  the projection width plus the bias-free ``project_in`` / ``project_out`` matrices.

* hybrid stacks (:attr:`~fitting.physics.architecture.Architecture.recurrent_layers`): Gated
  DeltaNet linear-attention layers (Qwen3-Next / Qwen3.5 ``linear_*`` keys: q/k/v and z
  projections, the b/a gates, the short convolution, ``dt_bias``, ``A_log``, the gated norm,
  ``out_proj``) replace attention in their layers; full-attention layers with
  ``attn_output_gate`` have a q projection twice as wide (query + gate). Other recurrent
  layer kinds (Mamba) raise ``ValueError``: their weights are not modelled;

Multi-token-prediction modules (``num_nextn_predict_layers``) are *not* in ``total``
(they are not part of the main model and vLLM does not load them unless speculative
decoding is on); :attr:`ParameterCount.mtp` reports them separately.

``active`` = total minus the routed-expert parameters a token does not use
(``routed x (1 - k/E)``); embeddings and the LM head are included.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .architecture import Architecture

__all__ = ["TensorSpec", "ParameterCount", "tensor_inventory", "count_parameters", "layer_norm_has_bias",
           "mlp_is_gated", "GGUF_FUSED_QKV"]

#: families whose MLP is fc1 -> act -> fc2 (no gate).
_NON_GATED = frozenset(
    {"opt", "gpt2", "gpt_bigcode", "gpt_neox", "phi", "phi-msft", "falcon", "RefinedWeb", "RefinedWebModel",
     "bloom", "gpt_neo", "gptj", "starcoder2", "mpt"}
)
#: families using LayerNorm with a bias (2 parameters per element).
_LAYERNORM_BIAS = frozenset(
    {"opt", "gpt2", "gpt_bigcode", "gpt_neox", "phi", "phi-msft", "falcon", "RefinedWeb", "RefinedWebModel",
     "bloom", "gpt_neo", "gptj", "starcoder2"}
)
#: families with biases on every linear layer (attention and MLP).
_ALL_BIASES = frozenset({"opt", "gpt2", "gpt_bigcode", "gpt_neox", "phi", "phi-msft", "bloom", "gpt_neo", "starcoder2"})
#: families with q/k/v biases only.
_QKV_BIAS = frozenset({"qwen2", "qwen2_moe", "qwen2_vl", "qwen2_5_vl", "mimo"})  # and every qwen2* text type
#: families with per-head q/k RMSNorm.
_QK_NORM_HEAD = frozenset({"qwen3", "qwen3_moe", "gemma3", "gemma3_text", "gemma4", "gemma4_text"})
#: families whose routers carry an ``e_score_correction_bias`` (noaux_tc routing).
_ROUTER_SCORE_BIAS = frozenset({"deepseek_v3", "kimi_k2", "glm4_moe"})
#: families llama.cpp stores with a fused attn_qkv tensor (used by the GGUF type rules).
GGUF_FUSED_QKV = frozenset({"falcon", "RefinedWeb", "RefinedWebModel", "phi", "phi-msft", "gpt2", "gpt_bigcode",
                            "bloom", "gpt_neox", "mpt"})


@dataclass(frozen=True)
class TensorSpec:
    """One weight tensor (or one family of identical tensors) of a model.

    Attributes
    ----------
    name : str
        HF-style name inside a layer (``self_attn.q_proj.weight``) or at model level.
    role : str
        ``embedding``, ``pos_embedding``, ``lm_head``, ``attn_q``, ``attn_k``, ``attn_v``,
        ``attn_o``, ``mla_q_a``, ``mla_q_b``, ``mla_kv_a``, ``mla_kv_b``, ``mlp_gate``,
        ``mlp_up``, ``mlp_down``, ``router``, ``norm``, ``bias``, ``sink``, ``proj``.
    rows, cols : int
        Output and input features of a matrix (``cols == 1`` for a vector).
    copies : int
        Identical tensors per layer (routed experts: ``num_experts``).
    layers : tuple of int or None
        Decoder layers holding it; None for model-level tensors.
    stage : str
        ``first`` (embeddings), ``last`` (final norm, LM head) or ``layer``.
    split : str
        Tensor-parallel split as vLLM does it: ``column`` (rows / tp), ``row`` (cols / tp),
        ``vocab`` (rows padded to 64, then / tp), ``replicated``.
    heads : int or None
        For head-wise column/row splits: the number of heads the dimension holds; per GPU
        it keeps ``ceil(heads / tp)`` heads (KV heads are replicated when tp > kv heads).
    quantizable : bool
        A linear-layer matrix that weight quantization (AWQ, GPTQ, FP8, ...) converts.
    kind : str
        ``dense``, ``expert`` (routed expert), ``shared_expert``, ``router`` or ``other``.
    """

    name: str
    role: str
    rows: int
    cols: int = 1
    copies: int = 1
    layers: tuple[int, ...] | None = None
    stage: str = "layer"
    split: str = "replicated"
    heads: int | None = None
    quantizable: bool = False
    kind: str = "other"

    @property
    def numel_per_layer(self) -> int:
        return self.rows * self.cols * self.copies

    @property
    def numel(self) -> int:
        """Parameters over all layers holding this tensor."""
        return self.numel_per_layer * (len(self.layers) if self.layers is not None else 1)

    @property
    def is_matrix(self) -> bool:
        return self.cols > 1


@dataclass(frozen=True)
class ParameterCount:
    """Parameter count of a model by component.

    Attributes
    ----------
    total : int
        All parameters of the main model (routed experts all counted; MTP excluded).
    active : float
        Parameters used per token: total minus the unused share of routed experts.
    embedding, lm_head : int
        Token (+ position) embeddings, and the untied LM head (0 when tied).
    attention, dense_mlp, routed_experts, shared_experts, router, norms : int
        Components inside the decoder layers (biases go with their matrices).
    mtp : int
        Multi-token-prediction module(s), not included in ``total``.
    """

    total: int
    active: float
    embedding: int
    lm_head: int
    attention: int
    dense_mlp: int
    routed_experts: int
    shared_experts: int
    router: int
    norms: int
    mtp: int = 0

    @property
    def non_embedding(self) -> int:
        """``total`` without token/position embeddings and LM head (Qwen's convention)."""
        return self.total - self.embedding - self.lm_head

    def active_by_convention(self, convention: str = "all") -> float:
        """Active parameters as vendors state them.

        Parameters
        ----------
        convention : {"all", "no_input_embedding", "no_embeddings"}
            ``all``: every parameter a token touches incl. embedding and LM head (Mistral,
            Qwen cards); ``no_input_embedding``: without the embedding lookup table
            (DeepSeek "36.6B incl. 0.9B output head", gpt-oss); ``no_embeddings``: without
            embedding and LM head (GLM-4.5).
        """
        if convention == "all":
            return self.active
        if convention == "no_input_embedding":
            return self.active - self.embedding
        if convention == "no_embeddings":
            return self.active - self.embedding - self.lm_head
        raise ValueError(f"unknown convention {convention!r}; expected all, no_input_embedding, no_embeddings")


def layer_norm_has_bias(arch: Architecture) -> bool:
    """True when the family's norms are LayerNorm with a bias."""
    return arch.text_model_type in _LAYERNORM_BIAS


def mlp_is_gated(arch: Architecture) -> bool:
    """True when the MLP is gated (gate/up/down), False for fc1/fc2 families."""
    if "mlp_gated" in arch.extra:
        return bool(arch.extra["mlp_gated"])
    return arch.text_model_type not in _NON_GATED


def _attention_bias(arch: Architecture) -> tuple[bool, bool]:
    """(q/k/v bias, o bias)."""
    t = arch.text_model_type
    if t in _ALL_BIASES:
        return True, True
    if t in _QKV_BIAS or (t.startswith("qwen2") and "attention_bias" not in arch.extra):
        return True, False
    if t in ("falcon", "RefinedWeb", "RefinedWebModel"):
        b = bool(arch.extra.get("bias", False))
        return b, b
    if t == "glm4_moe":
        b = bool(arch.extra.get("attention_bias", False))
        return b, False
    b = bool(arch.extra.get("attention_bias", False))
    return b, b


def _mlp_bias(arch: Architecture) -> bool:
    t = arch.text_model_type
    if t in _ALL_BIASES:
        return True
    if t in ("falcon", "RefinedWeb", "RefinedWebModel"):
        return bool(arch.extra.get("bias", False))
    return bool(arch.extra.get("mlp_bias", False))


def _norms_per_layer(arch: Architecture) -> int:
    t = arch.text_model_type
    if t in ("gemma2", "gemma3", "gemma3_text"):
        return 4
    if t in ("gemma4", "gemma4_text"):
        # modeling_gemma4.Gemma4TextDecoderLayer: 4, plus 3 around the MoE block
        return 7 if arch.is_moe else 4
    if t in ("phi", "phi-msft"):
        return 1
    if t in ("falcon", "RefinedWeb", "RefinedWebModel"):
        if arch.extra.get("new_decoder_architecture"):
            return 2
        return 1 if arch.extra.get("parallel_attn", True) else 2
    return 2


def _has_final_norm(arch: Architecture) -> bool:
    """False for post-LN OPT (``do_layer_norm_before`` false, OPT-350m) and OPT configs with
    ``_remove_final_layer_norm``: transformers' and vLLM's OPTDecoder then build no final LayerNorm."""
    if arch.text_model_type != "opt":
        return True
    return bool(arch.extra.get("do_layer_norm_before", True)) and not arch.extra.get("_remove_final_layer_norm", False)


def _qk_norm(arch: Architecture) -> str | None:
    t = arch.text_model_type
    if t == "olmo2":
        return "full"
    if t in _QK_NORM_HEAD or t.startswith("qwen3") or arch.extra.get("use_qk_norm"):
        return "head"
    return None


@lru_cache(maxsize=256)
def tensor_inventory(arch: Architecture, *, include_mtp: bool = False) -> tuple[TensorSpec, ...]:
    """Every weight tensor of ``arch`` (see :class:`TensorSpec`).

    Parameters
    ----------
    arch : Architecture
    include_mtp : bool, default False
        Add the multi-token-prediction module(s) (``num_nextn_predict_layers``) as extra
        layers with indices ``num_layers, num_layers + 1, ...``.

    Returns
    -------
    tuple of TensorSpec
    """
    specs: list[TensorSpec] = []
    add = specs.append
    t = arch.text_model_type
    h = arch.hidden_size
    L = arch.num_layers
    all_layers = tuple(range(L))
    ln_bias = layer_norm_has_bias(arch)

    # ---------------- model-level tensors
    add(TensorSpec("embed_tokens.weight", "embedding", arch.vocab_size, h, stage="first", split="vocab"))
    if t == "opt":
        proj = int(arch.extra.get("word_embed_proj_dim") or h)
        specs[-1] = TensorSpec("embed_tokens.weight", "embedding", arch.vocab_size, proj, stage="first", split="vocab")
        rows = (arch.max_position_embeddings or 2048) + 2
        add(TensorSpec("embed_positions.weight", "pos_embedding", rows, h, stage="first"))
        if proj != h:
            add(TensorSpec("project_in.weight", "proj", h, proj, stage="first"))
            add(TensorSpec("project_out.weight", "proj", proj, h, stage="last"))
    elif t in ("gpt2", "gpt_bigcode"):
        rows = arch.max_position_embeddings or 1024
        add(TensorSpec("wpe.weight", "pos_embedding", rows, h, stage="first"))
    if _has_final_norm(arch):
        add(TensorSpec("norm.weight", "norm", h, stage="last"))
        if ln_bias:
            add(TensorSpec("norm.bias", "norm", h, stage="last"))
    if not arch.tie_word_embeddings:
        head_cols = int(arch.extra.get("word_embed_proj_dim") or h) if t == "opt" else h
        add(TensorSpec("lm_head.weight", "lm_head", arch.vocab_size, head_cols, stage="last", split="vocab"))
        if t in ("phi", "phi-msft"):
            add(TensorSpec("lm_head.bias", "bias", arch.vocab_size, stage="last", split="vocab"))

    specs.extend(_layer_tensors(arch, all_layers, ln_bias, moe_layers=set(arch.moe_layers)))
    hpl = int(arch.extra.get("hidden_size_per_layer_input") or 0)
    if hpl and t.startswith(("gemma4", "gemma3n")):
        # per-layer input embeddings (modeling_gemma4.Gemma4TextModel / Gemma4TextDecoderLayer):
        # one packed [vocab_per_layer, L x hpl] table, its projection from the hidden state, and a
        # gate + projection + norm in every layer
        vpl = int(arch.extra.get("vocab_size_per_layer_input") or arch.vocab_size)
        add(TensorSpec("embed_tokens_per_layer.weight", "embedding", vpl, L * hpl, stage="first"))
        add(TensorSpec("per_layer_model_projection.weight", "proj", L * hpl, h, stage="first"))
        add(TensorSpec("per_layer_projection_norm.weight", "norm", hpl, stage="first"))
        add(TensorSpec("per_layer_input_gate.weight", "ple_proj", hpl, h, layers=all_layers))
        add(TensorSpec("per_layer_projection.weight", "ple_proj", h, hpl, layers=all_layers))
        add(TensorSpec("post_per_layer_input_norm.weight", "norm", h, layers=all_layers))

    if include_mtp:
        n_mtp = int(arch.extra.get("num_nextn_predict_layers") or arch.extra.get("mtp_num_hidden_layers") or 0)
        if n_mtp:
            mtp_layers = tuple(range(L, L + n_mtp))
            specs.extend(_layer_tensors(arch, mtp_layers, ln_bias, moe_layers=set(mtp_layers) if arch.is_moe else set()))
            for name, rows, cols in (("enorm.weight", h, 1), ("hnorm.weight", h, 1), ("eh_proj.weight", h, 2 * h),
                                     ("shared_head.norm.weight", h, 1)):
                add(TensorSpec(name, "norm" if cols == 1 else "proj", rows, cols, layers=mtp_layers))
    return tuple(specs)


def _layer_tensors(arch: Architecture, layers: tuple[int, ...], ln_bias: bool, moe_layers: set[int]) -> list[TensorSpec]:
    specs: list[TensorSpec] = []
    add = specs.append
    h = arch.hidden_size
    n_h, n_kv, hd = arch.num_attention_heads, arch.num_kv_heads, arch.head_dim
    all_layers = layers

    def norm(name: str, width: int, lay=layers):
        add(TensorSpec(f"{name}.weight", "norm", width, layers=lay))
        if ln_bias:
            add(TensorSpec(f"{name}.bias", "norm", width, layers=lay))

    # ---------------- norms around the blocks
    for i in range(_norms_per_layer(arch)):
        norm(f"layernorm_{i}", h)

    # ---------------- recurrent layers (hybrid stacks) and the attention layers
    recurrent = set(arch.recurrent_layers)
    if recurrent & set(layers):
        specs.extend(_recurrent_tensors(arch, tuple(i for i in layers if i in recurrent)))
        layers = tuple(i for i in layers if i not in recurrent)

    # ---------------- attention
    if not layers:
        pass
    elif arch.is_mla:
        q_width = n_h * (arch.qk_nope_head_dim + arch.qk_rope_head_dim)
        if arch.q_lora_rank:
            add(TensorSpec("self_attn.q_a_proj.weight", "mla_q_a", arch.q_lora_rank, h, layers=layers, quantizable=True))
            add(TensorSpec("self_attn.q_a_layernorm.weight", "norm", arch.q_lora_rank, layers=layers))
            add(TensorSpec("self_attn.q_b_proj.weight", "mla_q_b", q_width, arch.q_lora_rank, layers=layers,
                           split="column", heads=n_h, quantizable=True))
        else:
            add(TensorSpec("self_attn.q_proj.weight", "attn_q", q_width, h, layers=layers, split="column", heads=n_h,
                           quantizable=True))
        add(TensorSpec("self_attn.kv_a_proj_with_mqa.weight", "mla_kv_a", arch.kv_lora_rank + arch.qk_rope_head_dim, h,
                       layers=layers, quantizable=True))
        add(TensorSpec("self_attn.kv_a_layernorm.weight", "norm", arch.kv_lora_rank, layers=layers))
        add(TensorSpec("self_attn.kv_b_proj.weight", "mla_kv_b", n_h * (arch.qk_nope_head_dim + arch.v_head_dim),
                       arch.kv_lora_rank, layers=layers, split="column", heads=n_h, quantizable=True))
        add(TensorSpec("self_attn.o_proj.weight", "attn_o", h, n_h * arch.v_head_dim, layers=layers, split="row",
                       heads=n_h, quantizable=True))
    else:
        qkv_bias, o_bias = _attention_bias(arch)
        q_gate = 2 if arch.extra.get("attn_output_gate") else 1  # Qwen3-Next / Qwen3.5: query and gate
        qk = _qk_norm(arch)
        # layers of one attention shape together (Gemma-4's global layers have their own)
        groups: dict[tuple[int, int, bool, bool], list[int]] = {}
        own_kv = set(arch.kv_layers)
        for i in layers:
            groups.setdefault(arch.attention_shape(i) + (i in own_kv,), []).append(i)
        for (n_kv, hd, has_v, has_k), group in groups.items():
            group = tuple(group)
            # a KV-sharing layer (Gemma-4 E-models) has only its query and output projections
            projs = (("q_proj", "attn_q", n_h),) + ((("k_proj", "attn_k", n_kv),) if has_k else ()) + \
                ((("v_proj", "attn_v", n_kv),) if has_v and has_k else ())
            for name, role, heads in projs:
                rows = heads * hd * (q_gate if role == "attn_q" else 1)
                add(TensorSpec(f"self_attn.{name}.weight", role, rows, h, layers=group, split="column", heads=heads,
                               quantizable=True))
                if qkv_bias:
                    add(TensorSpec(f"self_attn.{name}.bias", "bias", heads * hd, layers=group, split="column",
                                   heads=heads))
            add(TensorSpec("self_attn.o_proj.weight", "attn_o", h, n_h * hd, layers=group, split="row", heads=n_h,
                           quantizable=True))
            if o_bias:
                add(TensorSpec("self_attn.o_proj.bias", "bias", h, layers=group))
            if qk == "head":
                add(TensorSpec("self_attn.q_norm.weight", "norm", hd, layers=group))
                if has_k:
                    add(TensorSpec("self_attn.k_norm.weight", "norm", hd, layers=group))
            elif qk == "full":
                add(TensorSpec("self_attn.q_norm.weight", "norm", n_h * hd, layers=group))
                add(TensorSpec("self_attn.k_norm.weight", "norm", n_kv * hd, layers=group))
        if arch.text_model_type == "gpt_oss":
            add(TensorSpec("self_attn.sinks", "sink", n_h, layers=layers, split="column", heads=n_h))

    # ---------------- MLP (every layer, recurrent ones included)
    layers = all_layers
    dense = tuple(i for i in layers if i not in moe_layers)
    moe = tuple(i for i in layers if i in moe_layers)
    if dense:
        wide = set(arch.double_wide_mlp_layers)
        narrow = tuple(i for i in dense if i not in wide)
        if narrow:
            specs.extend(_mlp(arch, "mlp", arch.intermediate_size, narrow, kind="dense"))
        if wide & set(dense):
            specs.extend(_mlp(arch, "mlp", 2 * arch.intermediate_size, tuple(i for i in dense if i in wide),
                              kind="dense"))
    if moe:
        E, I = arch.num_experts, arch.moe_intermediate_size
        gpt_oss = arch.text_model_type == "gpt_oss"
        add(TensorSpec("mlp.gate.weight", "router", E, h, layers=moe, kind="router"))
        if gpt_oss:
            add(TensorSpec("mlp.gate.bias", "router", E, layers=moe, kind="router"))
        if arch.text_model_type in _ROUTER_SCORE_BIAS:
            add(TensorSpec("mlp.gate.e_score_correction_bias", "router", E, layers=moe, kind="router"))
        add(TensorSpec("mlp.experts.gate_proj.weight", "mlp_gate", I, h, copies=E, layers=moe, split="column",
                       quantizable=True, kind="expert"))
        add(TensorSpec("mlp.experts.up_proj.weight", "mlp_up", I, h, copies=E, layers=moe, split="column",
                       quantizable=True, kind="expert"))
        add(TensorSpec("mlp.experts.down_proj.weight", "mlp_down", h, I, copies=E, layers=moe, split="row",
                       quantizable=True, kind="expert"))
        if gpt_oss:
            add(TensorSpec("mlp.experts.gate_up_proj_bias", "bias", 2 * I, copies=E, layers=moe, split="column",
                           kind="expert"))
            add(TensorSpec("mlp.experts.down_proj_bias", "bias", h, copies=E, layers=moe, kind="expert"))
        if arch.shared_expert_intermediate_size:
            specs.extend(_mlp(arch, "mlp.shared_experts", arch.shared_expert_intermediate_size, moe,
                              kind="shared_expert", force_gated=True))
            if arch.text_model_type.startswith(("qwen2_moe", "qwen3_next", "qwen3_5")):
                add(TensorSpec("mlp.shared_expert_gate.weight", "router", 1, h, layers=moe, kind="router"))
    return specs


def _recurrent_tensors(arch: Architecture, layers: tuple[int, ...]) -> list[TensorSpec]:
    """Mixer tensors of linear-attention layers (Gated DeltaNet: Qwen3-Next / Qwen3.5)."""
    x = arch.extra
    kinds = {arch.layer_types[i] for i in layers}
    if kinds != {"linear_attention"} or x.get("linear_num_value_heads") is None:
        raise ValueError(
            f"{arch.text_model_type}: recurrent layers of kind {sorted(kinds)} are not modelled by the parameter count "
            "(only Gated DeltaNet with linear_* keys is); give the safetensors metadata for exact weights")
    h = arch.hidden_size
    nk, dk = int(x["linear_num_key_heads"]), int(x["linear_key_head_dim"])
    nv, dv = int(x["linear_num_value_heads"]), int(x["linear_value_head_dim"])
    kernel = int(x.get("linear_conv_kernel_dim") or 4)
    key_dim, value_dim = nk * dk, nv * dv
    conv_dim = 2 * key_dim + value_dim
    lin = "linear_attn"
    return [
        TensorSpec(f"{lin}.in_proj_qkv.weight", "linear_in", conv_dim, h, layers=layers, split="column",
                   quantizable=True),
        TensorSpec(f"{lin}.in_proj_z.weight", "linear_in", value_dim, h, layers=layers, split="column",
                   quantizable=True),
        TensorSpec(f"{lin}.in_proj_b.weight", "linear_gate", nv, h, layers=layers, split="column"),
        TensorSpec(f"{lin}.in_proj_a.weight", "linear_gate", nv, h, layers=layers, split="column"),
        TensorSpec(f"{lin}.conv1d.weight", "conv", conv_dim, kernel, layers=layers, split="column"),
        TensorSpec(f"{lin}.dt_bias", "state", nv, layers=layers, split="column"),
        TensorSpec(f"{lin}.A_log", "state", nv, layers=layers, split="column"),
        TensorSpec(f"{lin}.norm.weight", "norm", dv, layers=layers),
        TensorSpec(f"{lin}.out_proj.weight", "linear_out", h, value_dim, layers=layers, split="row",
                   quantizable=True),
    ]


def _mlp(arch: Architecture, prefix: str, width: int, layers: tuple[int, ...], *, kind: str,
         force_gated: bool = False) -> list[TensorSpec]:
    h = arch.hidden_size
    bias = _mlp_bias(arch) and kind == "dense"
    out: list[TensorSpec] = []
    if force_gated or mlp_is_gated(arch):
        out.append(TensorSpec(f"{prefix}.gate_proj.weight", "mlp_gate", width, h, layers=layers, split="column",
                              quantizable=True, kind=kind))
    out.append(TensorSpec(f"{prefix}.up_proj.weight", "mlp_up", width, h, layers=layers, split="column",
                          quantizable=True, kind=kind))
    if bias:
        out.append(TensorSpec(f"{prefix}.up_proj.bias", "bias", width, layers=layers, split="column", kind=kind))
    out.append(TensorSpec(f"{prefix}.down_proj.weight", "mlp_down", h, width, layers=layers, split="row",
                          quantizable=True, kind=kind))
    if bias:
        out.append(TensorSpec(f"{prefix}.down_proj.bias", "bias", h, layers=layers, kind=kind))
    return out


@lru_cache(maxsize=256)
def count_parameters(arch: Architecture) -> ParameterCount:
    """Count the parameters of ``arch`` by component.

    Parameters
    ----------
    arch : Architecture

    Returns
    -------
    ParameterCount
        ``total`` (all experts resident, MTP excluded), ``active`` per token, and the
        components; see the module docstring for what each family contributes.

    Examples
    --------
    >>> from fitting.data.registry import resolve_model
    >>> count_parameters(resolve_model("meta-llama/Llama-3.1-8B").architecture).total
    8030261248
    """
    sums = {"embedding": 0, "lm_head": 0, "attention": 0, "dense_mlp": 0, "routed_experts": 0, "shared_experts": 0,
            "router": 0, "norms": 0}
    for s in tensor_inventory(arch):
        n = s.numel
        if s.role in ("embedding", "pos_embedding") or (s.role == "proj" and s.stage == "first"):
            sums["embedding"] += n
        elif s.role == "lm_head" or (s.stage == "last" and s.role in ("bias", "proj")):
            sums["lm_head"] += n
        elif s.role == "norm":
            sums["norms"] += n
        elif s.kind == "expert":
            sums["routed_experts"] += n
        elif s.kind == "shared_expert":
            sums["shared_experts"] += n
        elif s.kind == "router":
            sums["router"] += n
        elif s.kind == "dense":
            sums["dense_mlp"] += n
        else:
            sums["attention"] += n
    total = sum(sums.values())
    active = float(total)
    if arch.is_moe:
        active -= sums["routed_experts"] * (1.0 - arch.num_experts_per_tok / arch.num_experts)
    mtp = sum(s.numel for s in tensor_inventory(arch, include_mtp=True)) - total
    return ParameterCount(total=total, active=active, mtp=mtp, **sums)
