"""The ``Architecture`` value type: what the memory physics needs to know about a model.

An :class:`Architecture` is built from a Hugging Face ``config.json`` dictionary (or the
registry's normalised form, which uses the same key names) by
:meth:`Architecture.from_hf_config`. It understands

* legacy key names: ``n_embd``/``n_layer``/``n_head``/``n_inner``/``n_positions`` (GPT-2,
  GPT-BigCode, phi-msft), ``n_head_kv``/``num_kv_heads``/``multi_query`` (Falcon,
  StarCoder), ``ffn_dim`` (OPT), ``ffn_hidden_size``, ``dtype`` for ``torch_dtype``;
* multimodal wrappers whose language model sits in ``text_config`` (Gemma-3, Mistral-3,
  LLaVA-style): the text fields are used, the wrapper's ``model_type`` is kept;
* the registry's ``text_model_type`` key for such wrappers;
* sliding-window semantics: explicit ``layer_types``; Qwen2-style ``use_sliding_window`` +
  ``max_window_layers``; Gemma-2 / gpt-oss alternation (sliding first); Gemma-3
  ``sliding_window_pattern`` (default 6); otherwise ``sliding_window`` on every layer;
* MoE layouts: DeepSeek/GLM ``first_k_dense_replace`` + ``moe_layer_freq``, Qwen-MoE
  ``decoder_sparse_step`` + ``mlp_only_layers``, shared experts (DeepSeek ``n_shared_experts``
  x ``moe_intermediate_size``; Qwen2-MoE ``shared_expert_intermediate_size``);
* MLA (``kv_lora_rank`` present; ``q_lora_rank`` may be null);
* the language model of multimodal checkpoints under ``text_config``, ``llm_config``
  (InternVL), ``language_config`` or ``thinker_config.text_config`` (Qwen-Omni); the towers
  beside it (``vision_config``, ``audio_config``...) are named in ``extra["multimodal_towers"]``
  and are not part of the architecture;
* hybrid stacks: ``layer_types`` with ``linear_attention`` (Gated DeltaNet, Qwen3-Next /
  Qwen3.5; Kimi ``linear_attn_config``) or ``mamba`` layers (``layers_block_type``,
  Nemotron-H ``hybrid_override_pattern``), which hold no KV cache (:attr:`Architecture.kv_layers`);
  Llama-4's chunked local attention (``attention_chunk_size`` on the RoPE layers) is kept as a
  sliding window of the chunk size;
* Gemma-4 (``gemma4_text``): the full-attention layers have their own head size
  (``global_head_dim``) and, with ``attention_k_eq_v``, their own KV-head count
  (``num_global_key_value_heads``) and no V projection (K is reused as V); ``enable_moe_block``
  puts the dense MLP *beside* the routed experts in every layer (kept as a shared expert of
  ``intermediate_size``), ``top_k_experts`` experts per token; the E-models' last
  ``num_kv_shared_layers`` layers reuse earlier KV (no cache, no K/V projections) and
  ``hidden_size_per_layer_input`` adds per-layer input embeddings (counted in the weights).

:func:`unrecognised_config_keys` lists the keys of a config that this module neither reads
nor knows to be irrelevant to memory, so that a caller can say what was assumed.

An explicit ``head_dim`` always wins over ``hidden_size / num_attention_heads``.
Fields absent from the config take the transformers default of that model type; their
names are listed in ``extra["defaulted_fields"]`` so that nothing is silently invented.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

__all__ = ["Architecture", "ArchitectureError", "FULL_ATTENTION", "SLIDING_ATTENTION", "LINEAR_ATTENTION", "MAMBA",
           "TEXT_CONFIG_KEYS", "unrecognised_config_keys"]

FULL_ATTENTION = "full_attention"
SLIDING_ATTENTION = "sliding_attention"
#: recurrent layers with a fixed-size state instead of a KV cache.
LINEAR_ATTENTION = "linear_attention"
MAMBA = "mamba"
_RECURRENT = frozenset({LINEAR_ATTENTION, MAMBA})

#: spellings of layer kinds in configs -> the canonical names above.
_LAYER_KIND = {
    "full_attention": FULL_ATTENTION, "attention": FULL_ATTENTION, "full": FULL_ATTENTION, "global": FULL_ATTENTION,
    "sliding_attention": SLIDING_ATTENTION, "sliding": SLIDING_ATTENTION, "local": SLIDING_ATTENTION,
    "sliding_window": SLIDING_ATTENTION, "swa": SLIDING_ATTENTION, "chunked_attention": SLIDING_ATTENTION,
    "linear_attention": LINEAR_ATTENTION, "linear": LINEAR_ATTENTION, "gdn": LINEAR_ATTENTION,
    "kda": LINEAR_ATTENTION, "deltanet": LINEAR_ATTENTION,
    "mamba": MAMBA, "mamba2": MAMBA, "ssm": MAMBA,
}

#: keys under which multimodal checkpoints keep their language model, in order of preference.
TEXT_CONFIG_KEYS = ("text_config", "llm_config", "language_config")
#: keys of the towers beside the language model.
_TOWER_KEYS = ("vision_config", "audio_config", "vision_tower_config", "speech_config", "visual",
               "talker_config", "token2wav_config", "perceiver_config", "vq_config")

#: Keys of the registry form that describe provenance, not architecture.
_METADATA_KEYS = frozenset(
    {
        "verification", "field_sources", "sources", "notes", "params", "weight_format",
        "layer_pattern", "trust_remote_code", "trust_remote_code_reason", "native_quantization",
        "filled_fields", "architectures_note",
    }
)

#: model types whose transformers config defaults ``tie_word_embeddings`` to True.
_TIED_BY_DEFAULT = frozenset(
    {
        "falcon", "RefinedWeb", "RefinedWebModel", "opt", "gpt2", "gpt_bigcode", "gemma",
        "gemma2", "gemma3", "gemma3_text", "gemma4", "gemma4_text", "bloom", "gpt_neo", "starcoder2",
    }
)

#: model types whose MLP width defaults to 4 x hidden when the config has no width key.
_FOUR_H_MLP = frozenset(
    {"falcon", "RefinedWeb", "RefinedWebModel", "gpt2", "gpt_bigcode", "phi-msft", "bloom", "gpt_neo"}
)

#: transformers Gemma3TextConfig defaults (official Gemma-3 configs only set non-default keys).
_GEMMA3_TEXT_DEFAULTS = {
    "vocab_size": 262208,
    "hidden_size": 2304,
    "intermediate_size": 9216,
    "num_hidden_layers": 26,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "max_position_embeddings": 131072,
    "sliding_window": 4096,
    "sliding_window_pattern": 6,
    "tie_word_embeddings": True,
}

#: transformers defaults of text configs that multimodal wrappers store sparsely (LLaVA's
#: ``text_config`` keeps only the keys that differ from ``LlamaConfig`` / ``MistralConfig``).
_SPARSE_TEXT_DEFAULTS = {
    "llama": {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
              "num_attention_heads": 32, "max_position_embeddings": 2048, "tie_word_embeddings": False},
    "mistral": {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 131072,
                "sliding_window": 4096, "tie_word_embeddings": False},
}

#: language-model type of multimodal wrappers whose text_config may omit ``model_type``.
_TEXT_TYPE_OF_WRAPPER = {"gemma3": "gemma3_text", "gemma4": "gemma4_text", "mistral3": "mistral", "llava": "llama"}

#: Qwen2-family transformers default for ``max_window_layers``.
_QWEN_MAX_WINDOW_LAYERS_DEFAULT = 28


class ArchitectureError(ValueError):
    """A config cannot be turned into an :class:`Architecture` (missing or invalid field)."""


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class Architecture:
    """Memory-relevant hyperparameters of one decoder-only language model.

    Attributes
    ----------
    model_type : str
        ``model_type`` as in config.json (for multimodal wrappers the wrapper's type; the
        language model's type is :attr:`text_model_type`).
    num_layers, hidden_size, num_attention_heads, num_kv_heads, head_dim : int
        Decoder layers, residual width, query heads, key/value heads (GQA/MQA) and the
        per-head width (explicit ``head_dim`` wins; MLA: ``qk_nope + qk_rope``).
    intermediate_size : int
        Width of the dense MLP (per expert for Mixtral / gpt-oss, where
        ``moe_intermediate_size`` equals it).
    vocab_size : int
        Rows of the token embedding.
    tie_word_embeddings : bool
        LM head shares the embedding matrix.
    num_experts, num_experts_per_tok, num_shared_experts : int or None
        Routed experts per MoE layer (None = dense model), experts used per token, and
        shared (always-on) experts.
    moe_intermediate_size, shared_expert_intermediate_size : int or None
        Width of one routed expert, and total width of the shared-expert MLP.
    dense_layers : tuple of int
        Indices of layers whose MLP is dense in an MoE model (empty for dense models).
    q_lora_rank, kv_lora_rank, qk_rope_head_dim, qk_nope_head_dim, v_head_dim : int or None
        Multi-head latent attention (DeepSeek-V2/V3, Kimi-K2); None for ordinary attention.
    sliding_window : int or None
        Window (tokens) of the sliding-window layers; None when no layer uses one.
    layer_types : tuple of str or None
        ``"full_attention"`` / ``"sliding_attention"`` per layer; None = all full attention.
    full_attention_head_dim, full_attention_kv_heads : int or None
        Head size and KV heads of the full-attention layers where they differ from the
        sliding ones (Gemma-4 ``global_head_dim`` / ``num_global_key_value_heads``); None =
        every layer has ``head_dim`` and ``num_kv_heads``. :meth:`attention_shape` gives a layer's.
    full_attention_k_eq_v : bool
        The full-attention layers have no V projection (Gemma-4 ``attention_k_eq_v``); their
        KV cache still holds K and V (vLLM allocates both).
    kv_shared_layers : int
        The last layers that reuse an earlier layer's keys and values (Gemma-3n / Gemma-4
        ``num_kv_shared_layers``): no K/V projection and no KV cache of their own.
    torch_dtype : str or None
        Checkpoint dtype as stated (None when the config has no such key).
    extra : Mapping
        Every other config key kept (read-only), plus ``defaulted_fields``.
    """

    model_type: str
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    num_experts: int | None = None
    num_experts_per_tok: int | None = None
    num_shared_experts: int | None = None
    moe_intermediate_size: int | None = None
    shared_expert_intermediate_size: int | None = None
    dense_layers: tuple[int, ...] = ()
    q_lora_rank: int | None = None
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int | None = None
    qk_nope_head_dim: int | None = None
    v_head_dim: int | None = None
    sliding_window: int | None = None
    layer_types: tuple[str, ...] | None = None
    full_attention_head_dim: int | None = None
    full_attention_kv_heads: int | None = None
    full_attention_k_eq_v: bool = False
    kv_shared_layers: int = 0
    torch_dtype: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.extra, MappingProxyType):
            object.__setattr__(self, "extra", _freeze(dict(self.extra)))
        for name in ("num_layers", "hidden_size", "num_attention_heads", "num_kv_heads", "head_dim",
                     "intermediate_size", "vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ArchitectureError(f"{name}: must be a positive integer, got {value!r}")
        if self.layer_types is not None and len(self.layer_types) != self.num_layers:
            raise ArchitectureError(
                f"layer_types: {len(self.layer_types)} entries for {self.num_layers} layers"
            )
        if self.num_experts is not None and (self.moe_intermediate_size is None or self.num_experts_per_tok is None):
            raise ArchitectureError("MoE model needs moe_intermediate_size and num_experts_per_tok")
        for name in ("full_attention_head_dim", "full_attention_kv_heads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
                raise ArchitectureError(f"{name}: must be a positive integer or None, got {value!r}")

    # ------------------------------------------------------------------ properties
    @property
    def is_moe(self) -> bool:
        """True when some layers route tokens to experts."""
        return bool(self.num_experts)

    @property
    def is_mla(self) -> bool:
        """True for multi-head latent attention (compressed KV cache)."""
        return self.kv_lora_rank is not None

    @property
    def text_model_type(self) -> str:
        """``model_type`` of the language model (``text_config.model_type`` for wrappers)."""
        return str(self.extra.get("text_model_type") or self.model_type)

    @property
    def max_position_embeddings(self) -> int | None:
        """Maximum context as configured (None when the config does not say)."""
        value = self.extra.get("max_position_embeddings")
        return int(value) if value is not None else None

    @property
    def moe_layers(self) -> tuple[int, ...]:
        """Indices of layers with a routed-expert MLP (empty for dense models)."""
        if not self.is_moe:
            return ()
        dense = set(self.dense_layers)
        return tuple(i for i in range(self.num_layers) if i not in dense)

    @property
    def double_wide_mlp_layers(self) -> tuple[int, ...]:
        """Layers whose dense MLP is twice ``intermediate_size`` wide: Gemma-4's KV-sharing layers
        when ``use_double_wide_mlp`` is set (transformers ``modeling_gemma4.Gemma4TextMLP``,
        5.24: ``intermediate_size * 2`` where ``kv_sharing_modes[layer] == "reuse"``)."""
        t = str(self.extra.get("text_model_type") or self.model_type)
        if not (t.startswith("gemma4") and self.extra.get("use_double_wide_mlp") and self.kv_shared_layers):
            return ()
        return tuple(range(self.num_layers - self.kv_shared_layers, self.num_layers))

    @property
    def widest_dense_intermediate_size(self) -> int:
        """The widest dense-MLP intermediate size of any layer (activation peaks)."""
        return self.intermediate_size * (2 if self.double_wide_mlp_layers else 1)

    @property
    def kv_layers(self) -> tuple[int, ...]:
        """Indices of layers that hold a KV cache (every layer but linear-attention / Mamba ones and
        the KV-sharing layers at the end of a Gemma-3n / Gemma-4 E-model stack)."""
        own = self.num_layers - self.kv_shared_layers
        if self.layer_types is None:
            return tuple(range(own))
        return tuple(i for i, t in enumerate(self.layer_types) if t not in _RECURRENT and i < own)

    @property
    def recurrent_layers(self) -> tuple[int, ...]:
        """Indices of linear-attention / Mamba layers (a fixed-size state, no KV cache)."""
        if self.layer_types is None:
            return ()
        return tuple(i for i, t in enumerate(self.layer_types) if t in _RECURRENT)

    @property
    def is_hybrid(self) -> bool:
        """True when some layers are recurrent (linear attention or Mamba)."""
        return bool(self.recurrent_layers)

    @property
    def sliding_layers(self) -> tuple[int, ...]:
        """Indices of sliding-window attention layers."""
        if self.layer_types is None or self.sliding_window is None:
            return ()
        return tuple(i for i, t in enumerate(self.layer_types) if t == SLIDING_ATTENTION)

    @property
    def num_sliding_layers(self) -> int:
        return len(self.sliding_layers)

    @property
    def num_full_layers(self) -> int:
        """Layers whose KV cache grows with the whole sequence (recurrent layers excluded)."""
        return len(self.kv_layers) - self.num_sliding_layers

    @property
    def has_layer_specific_attention(self) -> bool:
        """True when the full-attention layers' head size, KV heads or V projection differ."""
        return bool(self.full_attention_head_dim or self.full_attention_kv_heads or self.full_attention_k_eq_v)

    def attention_shape(self, layer: int) -> tuple[int, int, bool]:
        """``(kv_heads, head_dim, has_v_proj)`` of one attention layer.

        Every layer has ``(num_kv_heads, head_dim, True)`` except the full-attention layers of a
        model with :attr:`has_layer_specific_attention` (Gemma-4's global layers).

        Examples
        --------
        >>> a = Architecture("llama", 2, 64, 4, 2, 16, 128, 100, False)
        >>> a.attention_shape(1)
        (2, 16, True)
        """
        if not self.has_layer_specific_attention or self.layer_types is None \
                or self.layer_types[layer] != FULL_ATTENTION:
            return self.num_kv_heads, self.head_dim, True
        return (self.full_attention_kv_heads or self.num_kv_heads, self.full_attention_head_dim or self.head_dim,
                not self.full_attention_k_eq_v)

    @property
    def defaulted_fields(self) -> tuple[str, ...]:
        """Config keys that were absent and took the transformers default of the model type."""
        return tuple(self.extra.get("defaulted_fields", ()))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_hf_config(cls, cfg: Mapping[str, Any]) -> "Architecture":
        """Build an :class:`Architecture` from a config.json dict or the registry's form.

        Parameters
        ----------
        cfg : Mapping
            Raw ``config.json`` content (any transformers version, legacy key names,
            ``text_config`` nesting) or a registry entry (same key names; provenance keys
            such as ``sources`` and ``notes`` are ignored).

        Returns
        -------
        Architecture

        Raises
        ------
        ArchitectureError
            A required dimension is missing or not a positive integer; the message names
            the field.

        Examples
        --------
        >>> a = Architecture.from_hf_config({"model_type": "llama", "hidden_size": 4096,
        ...     "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
        ...     "intermediate_size": 14336, "vocab_size": 128256})
        >>> a.head_dim, a.num_kv_heads
        (128, 8)
        """
        if not isinstance(cfg, Mapping):
            raise ArchitectureError(f"config must be a mapping, got {type(cfg).__name__}")
        if isinstance(cfg.get("config"), Mapping) and "hidden_size" not in cfg:
            cfg = cfg["config"]  # a fitting/data/registry.yaml record
        return _build(dict(cfg), cls)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON/YAML friendly); ``Architecture.from_hf_config`` round-trips it."""
        out: dict[str, Any] = {}
        for key, value in _thaw(self.extra).items():
            if key not in ("defaulted_fields",):
                out[key] = value
        out.update(
            {
                "model_type": self.model_type,
                "num_hidden_layers": self.num_layers,
                "hidden_size": self.hidden_size,
                "num_attention_heads": self.num_attention_heads,
                "num_key_value_heads": self.num_kv_heads,
                "head_dim": self.head_dim,
                "intermediate_size": self.intermediate_size,
                "vocab_size": self.vocab_size,
                "tie_word_embeddings": self.tie_word_embeddings,
                "torch_dtype": self.torch_dtype,
                "sliding_window": self.sliding_window,
                "layer_types": list(self.layer_types) if self.layer_types is not None else None,
            }
        )
        if self.is_moe:
            out.update(
                {
                    "num_experts": self.num_experts,
                    "num_experts_per_tok": self.num_experts_per_tok,
                    "moe_intermediate_size": self.moe_intermediate_size,
                    "num_shared_experts": self.num_shared_experts,
                    "shared_expert_intermediate_size": self.shared_expert_intermediate_size,
                    "dense_layers": list(self.dense_layers),
                }
            )
            for key in ("n_routed_experts", "num_local_experts", "n_shared_experts", "first_k_dense_replace",
                        "moe_layer_freq", "decoder_sparse_step", "mlp_only_layers"):
                out.pop(key, None)
        if self.is_mla:
            out.update(
                {
                    "q_lora_rank": self.q_lora_rank,
                    "kv_lora_rank": self.kv_lora_rank,
                    "qk_rope_head_dim": self.qk_rope_head_dim,
                    "qk_nope_head_dim": self.qk_nope_head_dim,
                    "v_head_dim": self.v_head_dim,
                }
            )
        for key in ("use_sliding_window", "max_window_layers", "sliding_window_pattern"):
            out.pop(key, None)
        return out


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


# ---------------------------------------------------------------------- builder helpers
def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or value is None:
        raise ArchitectureError(f"{name}: must be a positive integer, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or value <= 0:
        raise ArchitectureError(f"{name}: must be a positive integer, got {value!r}")
    return value


def _first(cfg: Mapping[str, Any], *keys: str) -> tuple[str | None, Any]:
    """First key present with a non-null value."""
    for key in keys:
        if cfg.get(key) is not None:
            return key, cfg[key]
    return None, None


def _merge_text_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Lift the language model's sub-config to the top level, keeping the wrapper type.

    ``text_config`` (Gemma-3, Mistral-3, LLaVA, Llama-4, Mllama), ``llm_config`` (InternVL),
    ``language_config``; Qwen-Omni nests its language model as ``thinker_config.text_config``.
    The towers beside it are listed in ``multimodal_towers`` (not modelled).
    """
    wrapper_type = cfg.get("model_type")
    towers = [k for k in _TOWER_KEYS if cfg.get(k)]
    prefix = ""
    if isinstance(cfg.get("thinker_config"), Mapping) and not any(isinstance(cfg.get(k), Mapping)
                                                                   for k in TEXT_CONFIG_KEYS):
        inner = dict(cfg["thinker_config"])
        towers += [f"thinker_config.{k}" for k in _TOWER_KEYS if inner.get(k)]
        for key in ("torch_dtype", "dtype", "quantization_config"):
            if key in cfg and key not in inner:
                inner[key] = cfg[key]
        cfg = {**{k: v for k, v in cfg.items() if k != "thinker_config" and k not in _TOWER_KEYS}, **inner}
        prefix = "thinker_config."
    key = next((k for k in TEXT_CONFIG_KEYS if isinstance(cfg.get(k), Mapping)), None)
    # the vision tower's own config stays beside the language model's (fitting.physics.towers
    # counts the tower from it; nothing else reads it)
    vision = cfg.get("vision_config") if isinstance(cfg.get("vision_config"), Mapping) else None
    if key is None:
        if not towers:
            return cfg
        merged = {k: v for k, v in cfg.items() if k not in _TOWER_KEYS}
        merged["multimodal_towers"] = tuple(towers)
        if vision is not None:
            merged["vision_config"] = dict(vision)
        return merged
    text = cfg[key]
    merged = {k: v for k, v in cfg.items() if k not in TEXT_CONFIG_KEYS and k not in _TOWER_KEYS}
    for k, value in text.items():
        merged[k] = value
    merged["model_type"] = wrapper_type or text.get("model_type")
    merged["text_model_type"] = (
        text.get("model_type") or cfg.get("text_model_type") or _TEXT_TYPE_OF_WRAPPER.get(wrapper_type, wrapper_type)
    )
    if "torch_dtype" not in text and "dtype" not in text:
        merged["torch_dtype"] = cfg.get("torch_dtype", cfg.get("dtype"))
    merged["text_config_key"] = prefix + key
    if towers:
        merged["multimodal_towers"] = tuple(towers)
    if vision is not None:
        merged["vision_config"] = dict(vision)
    return merged


def _build(cfg: dict[str, Any], cls) -> Architecture:
    cfg = {k: v for k, v in cfg.items() if k not in _METADATA_KEYS}
    cfg = _merge_text_config(cfg)
    model_type = cfg.get("model_type")
    if model_type is None:
        archs = cfg.get("architectures") or []
        model_type = str(archs[0]) if archs else "unknown"
    model_type = str(model_type)
    text_type = str(cfg.get("text_model_type") or model_type)
    defaulted: list[str] = []

    if text_type in ("gemma3_text", "gemma3"):
        # Official Gemma-3 text configs only set non-default keys.
        for key, value in _GEMMA3_TEXT_DEFAULTS.items():
            if key not in cfg:
                cfg[key] = value
                defaulted.append(key)
    elif cfg.get("text_config_key") and text_type in _SPARSE_TEXT_DEFAULTS:
        # LLaVA-style text_config: only the keys that differ from the text model's defaults
        for key, value in _SPARSE_TEXT_DEFAULTS[text_type].items():
            if key not in cfg:
                cfg[key] = value
                defaulted.append(key)

    _, hidden = _first(cfg, "hidden_size", "n_embd", "d_model", "dim")
    hidden = _positive_int(hidden, "hidden_size")
    _, layers = _first(cfg, "num_hidden_layers", "n_layer", "num_layers", "n_layers")
    layers = _positive_int(layers, "num_hidden_layers")
    _, heads = _first(cfg, "num_attention_heads", "n_head", "num_heads", "n_heads")
    heads = _positive_int(heads, "num_attention_heads")

    # --- KV heads: GQA key names, Falcon/StarCoder multi-query, ChatGLM groups
    kv_key, kv_heads = _first(cfg, "num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num")
    if kv_key == "multi_query_group_num" and not cfg.get("multi_query_attention", True):
        kv_heads = None
    if kv_heads is None:
        new_arch = bool(cfg.get("new_decoder_architecture"))
        if cfg.get("multi_query") and not new_arch:
            kv_heads = 1
        else:
            kv_heads = heads
            defaulted.append("num_key_value_heads")
    kv_heads = _positive_int(kv_heads, "num_key_value_heads")

    # --- MLA
    kv_lora = cfg.get("kv_lora_rank")
    is_mla = kv_lora is not None
    q_lora = cfg.get("q_lora_rank") if is_mla else None
    qk_rope = cfg.get("qk_rope_head_dim") if is_mla else None
    qk_nope = cfg.get("qk_nope_head_dim") if is_mla else None
    v_head = cfg.get("v_head_dim") if is_mla else None
    if is_mla:
        kv_lora = _positive_int(kv_lora, "kv_lora_rank")
        qk_rope = _positive_int(qk_rope, "qk_rope_head_dim")
        qk_nope = _positive_int(qk_nope, "qk_nope_head_dim")
        v_head = _positive_int(v_head, "v_head_dim")
        q_lora = _positive_int(q_lora, "q_lora_rank") if q_lora else None

    # --- head_dim: explicit wins
    head_key, head_dim = _first(cfg, "head_dim", "kv_channels")
    if head_dim is None:
        if is_mla:
            head_dim = qk_nope + qk_rope
        else:
            if hidden % heads:
                raise ArchitectureError(
                    f"head_dim: absent and hidden_size {hidden} is not divisible by num_attention_heads {heads}"
                )
            head_dim = hidden // heads
    head_dim = _positive_int(head_dim, "head_dim")

    # --- dense MLP width
    _, inter = _first(cfg, "intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size", "inner_hidden_size")
    if inter is None:
        if model_type in _FOUR_H_MLP or text_type in _FOUR_H_MLP:
            inter = 4 * hidden
            defaulted.append("intermediate_size")
        elif cfg.get("moe_intermediate_size") and _first(cfg, "n_routed_experts", "num_local_experts", "num_experts",
                                                          "moe_num_experts")[1]:
            # an MoE model without dense MLP layers (Qwen3.5-MoE) states no dense width; checked below
            inter = cfg["moe_intermediate_size"]
            defaulted.append("intermediate_size")
        else:
            raise ArchitectureError("intermediate_size: missing (no ffn_dim/n_inner/ffn_hidden_size either)")
    inter = _positive_int(inter, "intermediate_size")

    _, vocab = _first(cfg, "vocab_size", "padded_vocab_size", "n_vocab")
    vocab = _positive_int(vocab, "vocab_size")

    tie = cfg.get("tie_word_embeddings")
    if tie is None:
        tie = model_type in _TIED_BY_DEFAULT or text_type in _TIED_BY_DEFAULT
        defaulted.append("tie_word_embeddings")
    tie = bool(tie)

    # --- MoE
    _, n_exp = _first(cfg, "n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts")
    n_exp = int(n_exp) if n_exp else None
    moe_inter = per_tok = n_shared = shared_inter = None
    dense_layers: tuple[int, ...] = ()
    if n_exp:
        _, per_tok = _first(cfg, "num_experts_per_tok", "experts_per_token", "moe_top_k", "num_experts_per_token",
                            "top_k_experts")
        per_tok = _positive_int(per_tok, "num_experts_per_tok")
        moe_inter = cfg.get("moe_intermediate_size")
        if moe_inter is None:
            moe_inter = inter  # Mixtral, gpt-oss: intermediate_size is the per-expert width
        moe_inter = _positive_int(moe_inter, "moe_intermediate_size")
        if cfg.get("n_shared_experts"):
            n_shared = int(cfg["n_shared_experts"])
            shared_inter = n_shared * moe_inter
        elif cfg.get("shared_expert_intermediate_size"):
            n_shared = int(cfg.get("num_shared_experts") or 1)  # normalised form (to_dict) keeps the count
            shared_inter = int(cfg["shared_expert_intermediate_size"])
        if cfg.get("dense_layers") is not None:  # normalised form (to_dict)
            dense_layers = tuple(int(i) for i in cfg["dense_layers"])
        else:
            dense_layers = _dense_layer_pattern(cfg, layers)

    if n_exp and dense_layers and "intermediate_size" in defaulted and not _first(
            cfg, "intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size", "inner_hidden_size")[1]:
        raise ArchitectureError(f"intermediate_size: missing, and layers {list(dense_layers)[:5]} have a dense MLP")
    if n_exp and text_type.startswith("llama4") and cfg.get("moe_intermediate_size") is None:
        # Llama-4: intermediate_size is the expert width, intermediate_size_mlp the dense one;
        # every MoE layer has one shared expert of the expert width.
        moe_inter = _positive_int(cfg.get("intermediate_size"), "intermediate_size")
        inter = _positive_int(cfg.get("intermediate_size_mlp") or inter, "intermediate_size_mlp")
        n_shared, shared_inter = 1, moe_inter
        if cfg.get("dense_layers") is None:
            moe_set = cfg.get("moe_layers")
            if moe_set is None:
                step = int(cfg.get("interleave_moe_layer_step") or 1)
                moe_set = range(step - 1, layers, step)
            moe_set = set(int(i) for i in moe_set)
            dense_layers = tuple(i for i in range(layers) if i not in moe_set)

    if n_exp and text_type.startswith("gemma4") and cfg.get("enable_moe_block") and shared_inter is None:
        # Gemma-4 MoE (modeling_gemma4.Gemma4TextDecoderLayer): the dense MLP runs beside the
        # routed experts in every layer, i.e. an always-on expert of intermediate_size
        n_shared, shared_inter = 1, inter

    # --- sliding window
    sliding_window, layer_types = _layer_pattern(cfg, text_type, layers)

    # --- Gemma-4 global layers (configuration_gemma4.Gemma4TextConfig.__post_init__: every
    # full-attention layer gets head_dim = global_head_dim, default 512, and, only with
    # attention_k_eq_v, num_key_value_heads = num_global_key_value_heads)
    full_head = full_kv = None
    k_eq_v = False
    if text_type.startswith("gemma4") and layer_types is not None and FULL_ATTENTION in layer_types:
        full_head = _positive_int(cfg.get("global_head_dim") or 512, "global_head_dim")
        if "global_head_dim" not in cfg:
            defaulted.append("global_head_dim")
        k_eq_v = bool(cfg.get("attention_k_eq_v", False))
        if k_eq_v and cfg.get("num_global_key_value_heads") is not None:
            full_kv = _positive_int(cfg["num_global_key_value_heads"], "num_global_key_value_heads")
        full_head = None if full_head == head_dim else full_head
    # Gemma-3n / Gemma-4 E-models: the last num_kv_shared_layers layers reuse the KV of the last
    # earlier layer of their kind (configuration_gemma4.Gemma4TextConfig.kv_sharing_modes)
    kv_shared = 0
    if text_type.startswith(("gemma4", "gemma3n")) and cfg.get("num_kv_shared_layers"):
        kv_shared = int(cfg["num_kv_shared_layers"])
        if not 0 <= kv_shared < layers:
            raise ArchitectureError(f"num_kv_shared_layers: {kv_shared} for {layers} layers")

    known = {
        "model_type", "text_model_type", "hidden_size", "n_embd", "num_hidden_layers", "n_layer",
        "num_attention_heads", "n_head", "num_key_value_heads", "num_kv_heads", "n_head_kv",
        "head_dim", "intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size", "vocab_size",
        "tie_word_embeddings", "torch_dtype", "dtype", "kv_lora_rank", "q_lora_rank",
        "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "num_experts_per_tok",
        "moe_intermediate_size", "layer_types", "dense_layers", "num_shared_experts",
        "shared_expert_intermediate_size",
    }
    extra = {k: v for k, v in cfg.items() if k not in known}
    if text_type != model_type:
        extra["text_model_type"] = text_type
    if cfg.get("sliding_window") is not None and sliding_window is None:
        extra["sliding_window_unused"] = cfg.get("sliding_window")
    extra.pop("sliding_window", None)
    _, max_pos = _first(cfg, "max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")
    if max_pos is not None:
        extra["max_position_embeddings"] = max_pos
    if defaulted:
        extra["defaulted_fields"] = tuple(dict.fromkeys(defaulted))

    return cls(
        model_type=model_type,
        num_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=inter,
        vocab_size=vocab,
        tie_word_embeddings=tie,
        num_experts=n_exp,
        num_experts_per_tok=per_tok,
        num_shared_experts=n_shared,
        moe_intermediate_size=moe_inter,
        shared_expert_intermediate_size=shared_inter,
        dense_layers=dense_layers,
        q_lora_rank=q_lora,
        kv_lora_rank=kv_lora if is_mla else None,
        qk_rope_head_dim=qk_rope,
        qk_nope_head_dim=qk_nope,
        v_head_dim=v_head,
        sliding_window=sliding_window,
        layer_types=layer_types,
        full_attention_head_dim=full_head,
        full_attention_kv_heads=full_kv,
        full_attention_k_eq_v=k_eq_v,
        kv_shared_layers=kv_shared,
        torch_dtype=cfg.get("torch_dtype") or cfg.get("dtype"),
        extra=extra,
    )


def _dense_layer_pattern(cfg: Mapping[str, Any], layers: int) -> tuple[int, ...]:
    """Indices of dense-MLP layers in an MoE model."""
    if "first_k_dense_replace" in cfg or "moe_layer_freq" in cfg:
        k = int(cfg.get("first_k_dense_replace") or 0)
        freq = cfg.get("moe_layer_freq", 1)
        if isinstance(freq, (list, tuple)):  # some configs give a 0/1 list per layer
            return tuple(i for i in range(layers) if not (i < len(freq) and freq[i]))
        freq = int(freq or 1)
        return tuple(i for i in range(layers) if not (i >= k and i % freq == 0))
    if "decoder_sparse_step" in cfg or "mlp_only_layers" in cfg:
        step = int(cfg.get("decoder_sparse_step") or 1)
        only = set(cfg.get("mlp_only_layers") or ())
        return tuple(i for i in range(layers) if i in only or (i + 1) % step != 0)
    return ()


def _canonical_kinds(values, key: str) -> tuple[str, ...]:
    out = []
    for value in values:
        kind = _LAYER_KIND.get(str(value).strip().lower())
        if kind is None:
            raise ArchitectureError(f"{key}: unknown layer kind {value!r}; known: {sorted(set(_LAYER_KIND))}")
        out.append(kind)
    return tuple(out)


def _explicit_layer_kinds(cfg: Mapping[str, Any], text_type: str, layers: int) -> tuple[str, ...] | None:
    """Per-layer kinds a config states: ``layer_types``, ``layers_block_type``, Kimi's
    ``linear_attn_config``, Llama-4's chunked / NoPE layers."""
    for key in ("layer_types", "layers_block_type"):
        if cfg.get(key) is not None:
            types = _canonical_kinds(cfg[key], key)
            if len(types) != layers:
                raise ArchitectureError(f"{key}: {len(types)} entries for {layers} layers")
            return types
    lin = cfg.get("linear_attn_config")
    if isinstance(lin, Mapping) and lin.get("full_attn_layers") is not None:
        full = {int(i) - 1 for i in lin["full_attn_layers"]}  # 1-based in Kimi-Linear's config
        return tuple(FULL_ATTENTION if i in full else LINEAR_ATTENTION for i in range(layers))
    if text_type.startswith("llama4") and cfg.get("attention_chunk_size"):
        rope = cfg.get("no_rope_layers")
        if not rope:
            rope = [int((i + 1) % 4 != 0) for i in range(layers)]
        if len(rope) != layers:
            raise ArchitectureError(f"no_rope_layers: {len(rope)} entries for {layers} layers")
        return tuple(SLIDING_ATTENTION if int(r) else FULL_ATTENTION for r in rope)
    return None


def _layer_pattern(cfg: Mapping[str, Any], text_type: str, layers: int) -> tuple[int | None, tuple[str, ...] | None]:
    """(sliding_window, layer_types) following each family's config semantics."""
    window = cfg.get("sliding_window")
    if text_type.startswith("llama4") and cfg.get("attention_chunk_size"):
        window = cfg["attention_chunk_size"]  # chunked local attention keeps at most one chunk
    explicit = _explicit_layer_kinds(cfg, text_type, layers)
    if explicit is not None:
        types = explicit
        if SLIDING_ATTENTION in types:
            if window is None:
                raise ArchitectureError("sliding_window: layer_types has sliding layers but no window")
            return _positive_int(window, "sliding_window"), types
        return None, (types if any(t != FULL_ATTENTION for t in types) else None)
    if window is None or window is False:
        return None, None
    window = _positive_int(window, "sliding_window")
    if "use_sliding_window" in cfg or text_type.startswith("qwen"):
        # Qwen2 semantics: only when use_sliding_window, and only layers >= max_window_layers.
        if not cfg.get("use_sliding_window", False):
            return None, None
        first = int(cfg.get("max_window_layers", _QWEN_MAX_WINDOW_LAYERS_DEFAULT))
        types = tuple(SLIDING_ATTENTION if i >= first else FULL_ATTENTION for i in range(layers))
        return (window, types) if first < layers else (None, None)
    if text_type in ("gemma2", "gpt_oss"):
        types = tuple(SLIDING_ATTENTION if i % 2 == 0 else FULL_ATTENTION for i in range(layers))
        return window, types
    if text_type in ("gemma3", "gemma3_text", "gemma4", "gemma4_text", "cohere2"):
        pattern = int(cfg.get("sliding_window_pattern") or (6 if text_type.startswith("gemma") else 4))
        types = tuple(FULL_ATTENTION if (i + 1) % pattern == 0 else SLIDING_ATTENTION for i in range(layers))
        return window, types
    return window, tuple(SLIDING_ATTENTION for _ in range(layers))


# ---------------------------------------------------------------------- config keys
#: keys read by :meth:`Architecture.from_hf_config` or by the parameter count.
_READ_KEYS = frozenset({
    "model_type", "text_model_type", "hidden_size", "n_embd", "d_model", "dim", "num_hidden_layers", "n_layer",
    "num_layers", "n_layers", "num_attention_heads", "n_head", "num_heads", "n_heads", "num_key_value_heads",
    "num_kv_heads", "n_head_kv", "multi_query_group_num", "multi_query_attention", "new_decoder_architecture",
    "multi_query", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "head_dim",
    "kv_channels", "intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size", "inner_hidden_size", "vocab_size",
    "padded_vocab_size", "n_vocab", "tie_word_embeddings", "n_routed_experts", "num_local_experts", "num_experts",
    "moe_num_experts", "num_experts_per_tok", "experts_per_token", "moe_top_k", "num_experts_per_token",
    "moe_intermediate_size", "n_shared_experts", "shared_expert_intermediate_size", "num_shared_experts",
    "dense_layers", "first_k_dense_replace", "moe_layer_freq", "decoder_sparse_step", "mlp_only_layers",
    "sliding_window", "layer_types", "layers_block_type", "linear_attn_config", "use_sliding_window",
    "max_window_layers", "sliding_window_pattern", "torch_dtype", "dtype", "max_position_embeddings", "n_positions",
    "max_sequence_length", "seq_length", "attention_chunk_size", "no_rope_layers", "interleave_moe_layer_step",
    "moe_layers", "intermediate_size_mlp", "architectures", "quantization_config", "quantization", "multimodal_towers",
    "text_config_key", "attention_bias", "mlp_bias", "bias", "use_qk_norm", "word_embed_proj_dim",
    "do_layer_norm_before", "_remove_final_layer_norm", "num_nextn_predict_layers", "mtp_num_hidden_layers",
    "parallel_attn", "mlp_gated", "attn_output_gate", "linear_num_key_heads", "linear_key_head_dim",
    "linear_num_value_heads", "linear_value_head_dim", "linear_conv_kernel_dim", "full_attention_interval",
    "thinker_config", "top_k_experts", "enable_moe_block", "global_head_dim", "num_global_key_value_heads",
    "attention_k_eq_v", "num_kv_shared_layers", "hidden_size_per_layer_input", "vocab_size_per_layer_input",
    *TEXT_CONFIG_KEYS, *_TOWER_KEYS,
})
#: words that make an unread key worth naming (it may change weights or the KV cache).
_RELEVANT = re.compile(r"layer|head|expert|hidden|intermediate|_dim|size|rank|vocab|window|kv|lora|mamba|ssm|state|"
                       r"conv|linear|proj|embed|mtp|nextn|cross|chunk|block|group|num_|n_|ffn|mlp|attn|attention|"
                       r"hybrid|pattern|override|quant|sparse|router_type|tower|vision|audio")
#: keys that match the words above but do not change memory (tokens, RoPE, routing, init, vision preprocessing).
_IRRELEVANT = re.compile(
    r"_token_id$|_token_index$|^rope|rope_|rotary|dropout|_eps$|epsilon|^init|initializer|_act$|^hidden_act|act_fn|"
    r"activation|^output_|^return_|router|routed_scaling|aux_loss|n_group|topk|norm_topk|scoring_func|softcap|"
    r"logit|scal(e|ing)|multiplier|^image_|^video_|^vision_|^audio_|spatial|patch|tokens_per|num_labels|label|"
    r"^use_|^is_|^pad|^bos|^eos|beam|^max_length|^min_length|window_size$|_implementation|pretraining_tp|"
    r"num_key_value_groups|^ep_size|^tp_size|dynamic_patch|image_size|select_layer|feature_layer|feature_select|"
    r"template|downsample|ps_version|thumbnail|position_embedding_type|layer_norm_type|norm_type|mamba_ssm_dtype|"
    r"num_hidden_groups|head_mask|chunk_size_feed_forward|cross_attention_hidden_size|add_cross_attention|"
    r"tie_encoder_decoder|keys_to_ignore|pruned_heads|block_sparse_moe|capacity|jitter|num_experts_offset|"
    r"suppress|ngram|num_return|penalty|diversity|sample|temperature|^top_|forced_|decoder_start|task_specific|"
    r"_commit_hash|torchscript|problem_type|finetuning|^prefix|tf_legacy|bfloat16|lora|^attn_temperature|"
    r"^floor_scale|^attn_scale|cache_implementation|^pretraining|scalar|original_max_position"
)


def unrecognised_config_keys(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    """Keys of a config that may matter for memory but that the physics does not read.

    The language model's sub-config (``text_config`` / ``llm_config`` / ``language_config``,
    Qwen-Omni's ``thinker_config.text_config``) is searched too (its keys are prefixed). Keys
    that are read, and keys known not to change weights or the KV cache (token ids, RoPE,
    routing, dropout, init, vision preprocessing), are left out. What the physics assumed for
    the rest: that they do not change the weights or the KV cache.

    Examples
    --------
    >>> unrecognised_config_keys({"hidden_size": 8, "cross_attention_layers": [3], "rope_theta": 1e4})
    ('cross_attention_layers',)
    """
    out: list[str] = []

    def scan(mapping: Mapping[str, Any], prefix: str) -> None:
        for key, value in mapping.items():
            if key in _READ_KEYS or key in _METADATA_KEYS:
                if key in ("thinker_config", *TEXT_CONFIG_KEYS) and isinstance(value, Mapping):
                    scan(value, f"{prefix}{key}.")
                continue
            if _IRRELEVANT.search(key) or not _RELEVANT.search(key):
                continue
            out.append(prefix + key)

    if isinstance(cfg, Mapping):
        scan(cfg, "")
    return tuple(sorted(out))
