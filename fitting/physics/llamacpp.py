"""llama.cpp's memory plan, from its own source: KV cache, compute buffer, output buffer, offload.

llama.cpp prints its memory plan at start-up (``CUDA0 model buffer size``, ``llama_kv_cache:
size = ... ( N cells, L layers, s/S seqs), K (f16): ..., V (f16): ...``, ``CUDA0 compute
buffer size``, ``CUDA_Host output buffer size``). This module computes the same figures
from the model's GGUF hyperparameters (the ``print_info:`` lines, or an
:class:`~fitting.physics.architecture.Architecture`) and the context settings.

Sources followed (llama.cpp as vendored in llama-cpp-python 0.3.36, ``vendor/llama.cpp``;
the logic of each part is older, the build where it changed is named where it matters):

* ``src/llama-kv-cache.cpp`` (``llama_kv_cache::llama_kv_cache``): per layer one K tensor
  ``ggml_new_tensor_3d(type_k, n_embd_k_gqa(il), kv_size, n_stream)`` and one V tensor
  ``(type_v, n_embd_v_gqa(il), kv_size, n_stream)``; ``n_stream = unified ? 1 : n_seq_max``;
  the log line prints ``kv_size`` as "cells", ``n_seq_max/n_stream`` as "seqs".
* ``src/llama-context.cpp``: ``n_ctx_seq = n_ctx`` when the cache is unified, else
  ``GGML_PAD(n_ctx / n_seq_max, 256)``; before PR #16812 (Oct 2025, b6900 era) ``n_ctx``
  itself was padded to 256 with flash attention and to 32 without
  (``llama_kv_cache_unified::get_padding``): the printed ``n_ctx`` already holds the padding.
* ``src/llama-kv-cache-iswa.cpp``: sliding-window models get two caches, the non-SWA one of
  ``kv_size`` cells and the SWA one of ``GGML_PAD(min(kv_size, n_swa * (unified ? n_seq_max
  : 1) + n_ubatch), 256)`` cells (``kv_size`` with ``--swa-full``).
* ``ggml/src/ggml-common.h`` / ``ggml.c``: row sizes of the cache types, ``ggml_row_size(type,
  n) = n / block * type_size`` (f32 4 B, f16/bf16 2 B, q8_0 34 B per 32, q4_0 18 B per 32,
  q4_1 20, q5_0 22, q5_1 24, iq4_nl 18 B per 32).
* ``src/llama-context.cpp`` (``output_reserve``): the host output buffer holds
  ``n_vocab * max(n_outputs, n_seq_max)`` float logits (plus ``n_embd`` floats per output
  with embeddings); at start-up ``n_outputs = n_seq_max``.
* ``src/llama-graph.cpp`` + ``ggml/src/ggml-alloc.c``: the compute buffer is the peak of
  the graph allocator over the worst-case graph (``n_ubatch`` tokens against a full cache of
  ``kv_size`` cells, every token an output). Without flash attention the attention scores
  ``KQ = n_kv x n_tokens x n_head`` f32 dominate (softmax runs in place: ggml-alloc's
  ``ggml_op_can_inplace`` lists ``GGML_OP_SOFT_MAX``); the mask input is ``n_kv x n_tokens``
  (f16 with flash attention, else f32); the output phase holds the final norm and the
  logits ``n_vocab x n_outputs`` f32. :func:`compute_buffer_bytes` takes the largest of the
  attention, feed-forward and output phases, each the sum of the tensors alive together.
  This is the allocator's peak to first order (small tensors and allocator alignment are
  left out); ``tests/test_llamacpp_physics.py`` checks it against printed buffers.
* ``src/llama-model.cpp`` (``load_tensors``): repeating layers ``il >= n_layer + 1 -
  n_gpu_layers`` go to the GPU, the output layer (``il == n_layer``) when ``n_gpu_layers >
  n_layer``; the token embeddings stay on the host.

Sizes are bytes (ints); MiB only at the edges (``fitting.units``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from fitting.physics.architecture import Architecture

__all__ = [
    "GGML_TYPES",
    "ComputeBuffer",
    "GGUFHparams",
    "KVCache",
    "compute_buffer_bytes",
    "kv_cache_bytes",
    "kv_caches",
    "kv_cells_swa",
    "layers_on_gpu",
    "n_ctx_seq",
    "output_buffer_bytes",
    "row_size",
    "weights_split_bytes",
]

#: ggml type -> (block size in elements, bytes per block) (``ggml/src/ggml-common.h``).
GGML_TYPES = {
    "f32": (1, 4), "f16": (1, 2), "bf16": (1, 2),
    "q8_0": (32, 34), "q4_0": (32, 18), "q4_1": (32, 20), "q5_0": (32, 22), "q5_1": (32, 24),
    "iq4_nl": (32, 18),
}

_F32 = 4
#: HF model types llama.cpp runs with a sliding-window (iSWA) KV cache (``llama-model.cpp``,
#: ``hparams.swa_type`` set in ``load_hparams``).
_ISWA_MODEL_TYPES = frozenset({"gemma2", "gemma3", "gemma3_text", "gpt_oss", "cohere2", "llama4", "exaone4",
                               "gemma3n", "mimo2", "gemma4", "gemma4_text"})
_SWA_PAD = 256  # llama-kv-cache-iswa.cpp and n_ctx_seq padding


def _pad(x: int, n: int) -> int:
    return (x + n - 1) // n * n


def row_size(ggml_type: str, n: int) -> int:
    """Bytes of a row of ``n`` elements of ``ggml_type`` (``ggml_row_size``).

    Raises
    ------
    ValueError
        Unknown type, or ``n`` not a multiple of the type's block size.
    """
    try:
        block, size = GGML_TYPES[ggml_type.lower()]
    except KeyError:
        raise ValueError(f"unknown ggml type {ggml_type!r}; known: {', '.join(GGML_TYPES)}") from None
    if n % block:
        raise ValueError(f"{n} elements is not a whole number of {ggml_type} blocks of {block}")
    return n // block * size


def _per_layer(value, n_layer: int, name: str) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        if len(value) != n_layer:
            raise ValueError(f"{name}: {len(value)} values for {n_layer} layers")
        return tuple(int(v) for v in value)
    return (int(value),) * n_layer


@dataclass(frozen=True)
class GGUFHparams:
    """The hyperparameters llama.cpp sizes its buffers with (``llama_hparams``).

    Per-layer quantities may be one int (every layer) or a tuple of ``n_layer`` ints, as
    ``print_info`` prints them. ``swa_layers`` marks the sliding-window layers (empty: none).
    ``n_embd_k_gqa``/``n_embd_v_gqa`` default to ``n_head_kv * n_embd_head_k/v``; MLA models
    (DeepSeek-2/3, GLM-4.7-Flash) print their own (``kv_lora_rank + n_rot`` and ``kv_lora_rank``).
    """

    n_layer: int
    n_embd: int
    n_head: int | tuple
    n_head_kv: int | tuple
    n_embd_head_k: int
    n_embd_head_v: int
    n_vocab: int
    n_ff: int | tuple = 0
    n_expert: int = 0
    n_expert_used: int = 0
    n_ff_exp: int = 0
    n_swa: int = 0
    swa_layers: tuple = ()
    n_embd_k_gqa: int | tuple | None = None
    n_embd_v_gqa: int | tuple | None = None
    arch: str | None = None
    extra: Mapping = field(default_factory=dict)

    def __post_init__(self):
        for name in ("n_layer", "n_embd", "n_embd_head_k", "n_vocab"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.swa_layers and len(self.swa_layers) != self.n_layer:
            raise ValueError("swa_layers needs one flag per layer")

    # ---------------------------------------------------------------- per layer
    def head_kv(self, il: int) -> int:
        return _per_layer(self.n_head_kv, self.n_layer, "n_head_kv")[il]

    def head(self, il: int) -> int:
        return _per_layer(self.n_head, self.n_layer, "n_head")[il]

    def embd_k_gqa(self, il: int) -> int:
        if self.n_embd_k_gqa is not None:
            return _per_layer(self.n_embd_k_gqa, self.n_layer, "n_embd_k_gqa")[il]
        return self.head_kv(il) * self.n_embd_head_k

    def embd_v_gqa(self, il: int) -> int:
        if self.n_embd_v_gqa is not None:
            return _per_layer(self.n_embd_v_gqa, self.n_layer, "n_embd_v_gqa")[il]
        return self.head_kv(il) * self.n_embd_head_v

    def is_swa(self, il: int) -> bool:
        return bool(self.swa_layers) and bool(self.swa_layers[il])

    @property
    def ff(self) -> int:
        """Largest dense feed-forward width (0 when every layer is MoE)."""
        return max(_per_layer(self.n_ff, self.n_layer, "n_ff")) if self.n_ff else 0

    # ---------------------------------------------------------------- builders
    @classmethod
    def from_printed(cls, printed: Mapping) -> "GGUFHparams":
        """Build from the ``print_info:`` / ``llm_load_print_meta:`` values of a log.

        ``printed`` maps the printed names (``n_layer``, ``n_embd``, ``n_head``,
        ``n_head_kv``, ``n_embd_head_k``, ``n_embd_head_v``, ``n_embd_k_gqa``,
        ``n_embd_v_gqa``, ``n_vocab``, ``n_ff``, ``n_expert``, ``n_expert_used``,
        ``n_ff_exp``, ``n_swa``, ``n_swa_pattern``, ``swa_layers``, ``arch``) to ints, tuples
        of ints, or strings. ``n_embd_head_k`` defaults to ``n_embd / n_head``.

        Raises
        ------
        KeyError
            ``n_layer``, ``n_embd``, ``n_head``, ``n_vocab`` missing.
        """
        n_layer = int(printed["n_layer"])
        n_head = printed["n_head"]
        n_head0 = max(_per_layer(n_head, n_layer, "n_head"))
        head_k = int(printed.get("n_embd_head_k") or int(printed["n_embd"]) // n_head0)
        swa_layers = tuple(bool(x) for x in printed.get("swa_layers") or ())
        n_swa = int(printed.get("n_swa") or 0)
        pattern = int(printed.get("n_swa_pattern") or 0)
        if n_swa and not swa_layers and pattern > 1:
            # llama_hparams::set_swa_pattern(n_pattern): every n_pattern-th layer is dense
            swa_layers = tuple((il % pattern) < (pattern - 1) for il in range(n_layer))
        return cls(
            n_layer=n_layer, n_embd=int(printed["n_embd"]), n_head=n_head,
            n_head_kv=printed.get("n_head_kv", n_head),
            n_embd_head_k=head_k, n_embd_head_v=int(printed.get("n_embd_head_v") or head_k),
            n_vocab=int(printed["n_vocab"]), n_ff=printed.get("n_ff") or 0,
            n_expert=int(printed.get("n_expert") or 0), n_expert_used=int(printed.get("n_expert_used") or 0),
            n_ff_exp=int(printed.get("n_ff_exp") or 0), n_swa=n_swa, swa_layers=swa_layers,
            n_embd_k_gqa=printed.get("n_embd_k_gqa"), n_embd_v_gqa=printed.get("n_embd_v_gqa"),
            arch=printed.get("arch"),
        )

    @classmethod
    def from_architecture(cls, arch: Architecture) -> "GGUFHparams":
        """Build from an HF-config :class:`Architecture` (what ``convert_hf_to_gguf.py`` writes).

        Sliding windows are applied only for the model types llama.cpp runs with an iSWA
        cache (``_ISWA_MODEL_TYPES``). MLA models get llama.cpp's MLA cache layout (K = ``kv_lora_rank + qk_rope_head_dim``
        per token and layer, V = ``kv_lora_rank``, one KV head), as built since PR #12801.
        """
        n_layer = arch.num_layers
        head_k = arch.head_dim
        head_v = arch.v_head_dim or head_k
        k_gqa = v_gqa = None
        head_kv = arch.num_kv_heads
        if arch.is_mla:
            rank, rope = int(arch.kv_lora_rank), int(arch.qk_rope_head_dim)
            k_gqa, v_gqa, head_kv = rank + rope, rank, 1
        elif arch.has_layer_specific_attention:
            # Gemma-4's global layers: their own KV heads and head size (per-layer hparams, as
            # llama.cpp keeps n_head_kv per layer); K and V both cached
            shapes = [arch.attention_shape(il)[:2] for il in range(n_layer)]
            head_kv = tuple(kv for kv, _ in shapes)
            k_gqa = v_gqa = tuple(kv * hd for kv, hd in shapes)
        # llama.cpp builds an iSWA cache only for the architectures whose loader sets a swa_type;
        # a window in the HF config of another type (Phi-3, Mistral-v0.1) is not applied.
        sliding = set(arch.sliding_layers) if arch.text_model_type in _ISWA_MODEL_TYPES else set()
        return cls(
            n_layer=n_layer, n_embd=arch.hidden_size, n_head=arch.num_attention_heads, n_head_kv=head_kv,
            n_embd_head_k=head_k, n_embd_head_v=head_v, n_vocab=arch.vocab_size,
            n_ff=int(arch.widest_dense_intermediate_size or 0), n_expert=int(arch.num_experts or 0),
            n_expert_used=int(arch.num_experts_per_tok or 0), n_ff_exp=int(arch.moe_intermediate_size or 0),
            n_swa=int(arch.sliding_window or 0) if sliding else 0,
            swa_layers=tuple(il in sliding for il in range(n_layer)) if sliding else (),
            n_embd_k_gqa=k_gqa, n_embd_v_gqa=v_gqa, arch=arch.model_type,
        )


# --------------------------------------------------------------------------- KV cache

@dataclass(frozen=True)
class KVCache:
    """One KV cache of a context: what the ``llama_kv_cache: size = ...`` line prints."""

    name: str              # "kv" (one cache), "non-SWA" or "SWA"
    cells: int             # kv_size per stream
    n_stream: int
    layers: tuple          # layer indices it holds
    k_bytes: int
    v_bytes: int

    @property
    def bytes(self) -> int:
        return self.k_bytes + self.v_bytes


def n_ctx_seq(n_ctx: int, n_seq_max: int = 1, kv_unified: bool = True) -> int:
    """Cells per stream: ``n_ctx`` (unified or one sequence), else ``GGML_PAD(n_ctx / n_seq_max, 256)``.

    ``n_ctx`` as printed (older builds padded it already, see the module docstring).
    """
    if kv_unified or n_seq_max <= 1:
        return int(n_ctx)
    return _pad(int(n_ctx) // int(n_seq_max), _SWA_PAD)


def kv_cells_swa(kv_size: int, n_swa: int, *, n_seq_max: int = 1, n_ubatch: int = 512, kv_unified: bool = True,
                 swa_full: bool = False) -> int:
    """Cells of the SWA cache of an iSWA model (``llama_kv_cache_iswa``).

    ``GGML_PAD(min(kv_size, n_swa * (unified ? n_seq_max : 1) + n_ubatch), 256)``, or
    ``kv_size`` with ``swa_full``.
    """
    if swa_full:
        return int(kv_size)
    return _pad(min(int(kv_size), int(n_swa) * (int(n_seq_max) if kv_unified else 1) + int(n_ubatch)), _SWA_PAD)


def kv_cache_bytes(hp: GGUFHparams, *, cells: int, type_k: str = "f16", type_v: str = "f16", n_stream: int = 1,
                   layers: Iterable[int] | None = None) -> int:
    """Bytes of one KV cache: ``sum over layers (row(type_k, n_embd_k_gqa) + row(type_v, n_embd_v_gqa)) * cells * n_stream``.

    Parameters
    ----------
    hp : GGUFHparams
    cells : int
        ``kv_size`` per stream (the "cells" of the log line).
    type_k, type_v : str
        Cache types (``f16``, ``bf16``, ``f32``, ``q8_0``, ``q4_0``, ``q4_1``, ``q5_0``, ``q5_1``, ``iq4_nl``).
    n_stream : int
        1 for a unified cache, else ``n_seq_max``.
    layers : iterable of int, optional
        Layers this cache holds (default: all).
    """
    layers = range(hp.n_layer) if layers is None else layers
    total = 0
    for il in layers:
        total += row_size(type_k, hp.embd_k_gqa(il)) + row_size(type_v, hp.embd_v_gqa(il))
    return total * int(cells) * int(n_stream)


def kv_caches(hp: GGUFHparams, *, n_ctx: int, type_k: str = "f16", type_v: str = "f16", n_seq_max: int = 1,
              kv_unified: bool = True, n_ubatch: int = 512, swa_full: bool = False) -> list[KVCache]:
    """The KV cache(s) llama.cpp allocates for a context, as its log lines print them.

    One cache for models without sliding-window layers; a non-SWA and a SWA cache for iSWA
    models (Gemma-2/3, gpt-oss, Cohere-2, ...). ``n_ctx`` as printed by ``llama_context``.
    """
    size = n_ctx_seq(n_ctx, n_seq_max, kv_unified)
    n_stream = 1 if kv_unified else max(1, int(n_seq_max))
    swa = tuple(il for il in range(hp.n_layer) if hp.is_swa(il))
    if not swa:
        plan = [("kv", size, tuple(range(hp.n_layer)))]
    else:
        size_swa = kv_cells_swa(size, hp.n_swa, n_seq_max=n_seq_max, n_ubatch=n_ubatch, kv_unified=kv_unified,
                                swa_full=swa_full)
        plan = [("non-SWA", size, tuple(il for il in range(hp.n_layer) if not hp.is_swa(il))),
                ("SWA", size_swa, swa)]
    out = []
    for name, cells, layers in plan:
        k = sum(row_size(type_k, hp.embd_k_gqa(il)) for il in layers) * int(cells) * n_stream
        v = sum(row_size(type_v, hp.embd_v_gqa(il)) for il in layers) * int(cells) * n_stream
        out.append(KVCache(name, cells, n_stream, layers, k, v))
    return out


# --------------------------------------------------------------------------- output buffer

def output_buffer_bytes(n_vocab: int, n_outputs: int, *, n_embd: int = 0, embeddings: bool = False) -> int:
    """Host output buffer: ``(n_vocab + (n_embd if embeddings)) * n_outputs * 4`` bytes.

    ``n_outputs`` is ``max(n_outputs, n_seq_max)`` of ``llama_context::output_reserve``; at
    start-up llama.cpp reserves for ``n_seq_max`` outputs (the printed ``output buffer size``).
    """
    return (int(n_vocab) + (int(n_embd) if embeddings else 0)) * int(n_outputs) * _F32


# --------------------------------------------------------------------------- compute buffer

@dataclass(frozen=True)
class ComputeBuffer:
    """The compute-buffer estimate: the live bytes of each graph phase and their maximum."""

    attention: int
    feed_forward: int
    output: int

    @property
    def bytes(self) -> int:
        return max(self.attention, self.feed_forward, self.output)

    @property
    def phase(self) -> str:
        """Which phase sets the peak."""
        return max(("attention", self.attention), ("feed_forward", self.feed_forward), ("output", self.output),
                   key=lambda kv: kv[1])[0]


#: Architectures whose last layer leaves an ``n_ff x n_outputs`` f32 hole below the final norm
#: when the logits are allocated. ``llm_build_glm4`` (src/llama-model.cpp) feeds one fused
#: ``ffn_up`` (``{n_embd, n_ff * 2}``) to ``build_ffn(..., LLM_FFN_SWIGLU, LLM_FFN_SEQ)``, which
#: (src/llama-graph.cpp, builds of 2025-05) splits it into two ``ggml_cont`` halves. The FFN norm
#: has that one consumer, so ggml-alloc frees it before the first half is allocated; that half
#: (silu'd, then the in-place product feeding ``ffn_down``) takes the bottom of the buffer, the
#: down projection lands directly above it and is reused in place by the post-FFN norm, the
#: residual, the output norm and ``result_norm``. The freed ``n_ff x T`` hole below cannot hold
#: the logits, which go above: peak = (n_ff + n_embd + n_vocab) * T * 4. Reproduced exactly by
#: the b5274-era allocator with the CUDA-like split (token embeddings on the host) for 2..61
#: layers and n_ubatch 256..2048 (353.00 MiB for GLM-Z1-32B at 512); llama's separate gate/up
#: keep the FFN norm alive while the gate is allocated, so its layer output reuses offset 0.
_SPLIT_SWIGLU_HOLE_ARCHS = frozenset({"glm4"})


def compute_buffer_bytes(hp: GGUFHparams, *, n_kv: int, n_ubatch: int, flash_attn: bool, n_outputs: int | None = None,
                         n_kv_swa: int | None = None) -> ComputeBuffer:
    """First-order peak of llama.cpp's compute buffer on one device holding every layer.

    The worst-case graph has ``n_tokens = n_ubatch`` tokens attending to ``n_kv`` cells
    (``n_kv_swa`` for sliding-window layers) and ``n_outputs`` outputs (default: every token).

    Phases (f32 activations; ``E`` = n_embd, ``T`` = n_tokens):

    * attention: mask ``n_kv * T`` (2 B with flash attention, else 4 B) + residual ``E*T`` +
      Q, K, V projections ``(n_head*d_k + 2*n_head_kv*d_k) * T`` + roped Q and K copies
      ``(n_head + n_head_kv) * d_k * T`` + without flash attention the scores
      ``n_kv * T * n_head`` (softmax in place), with it the output ``n_head * d_v * T``;
    * feed-forward: residual ``2*E*T`` + gate and up ``2 * n_ff * T`` (MoE: ``2 * n_expert_used *
      n_ff_exp * T`` plus router logits ``n_expert * T``);
    * output: final norm ``E*T`` + logits ``n_vocab * n_outputs``; for the architectures in
      :data:`_SPLIT_SWIGLU_HOLE_ARCHS` also ``n_ff * n_outputs``: the hole the last layer's
      SwiGLU product leaves below the final norm, too small for the logits (see there).
    """
    T = int(min(n_ubatch, n_kv)) if n_kv else int(n_ubatch)
    outputs = T if n_outputs is None else int(n_outputs)
    E = int(hp.n_embd)
    attention = 0
    for il in range(hp.n_layer):
        kv = int(n_kv_swa) if (n_kv_swa is not None and hp.is_swa(il)) else int(n_kv)
        n_head, n_head_kv = hp.head(il), hp.head_kv(il)
        d_k, d_v = hp.n_embd_head_k, hp.n_embd_head_v
        live = kv * T * (2 if flash_attn else _F32) + E * T * _F32
        live += (n_head * d_k + 2 * n_head_kv * d_k) * T * _F32 + (n_head + n_head_kv) * d_k * T * _F32
        live += (n_head * d_v * T * _F32) if flash_attn else kv * T * n_head * _F32
        attention = max(attention, live)
    if hp.n_expert and hp.n_ff_exp:
        ffn_width = max(2 * hp.n_expert_used * hp.n_ff_exp + hp.n_expert, 2 * hp.ff)
    else:
        ffn_width = 2 * hp.ff
    feed_forward = (2 * E + ffn_width) * T * _F32
    output = E * T * _F32 + int(hp.n_vocab) * outputs * _F32
    if (hp.arch or "").lower() in _SPLIT_SWIGLU_HOLE_ARCHS and hp.ff:
        output += int(hp.ff) * outputs * _F32
    return ComputeBuffer(attention, feed_forward, output)


# --------------------------------------------------------------------------- offload

def layers_on_gpu(n_layer: int, n_gpu_layers: int | None) -> tuple[int, int, bool]:
    """Which layers ``-ngl`` puts on the GPU (``llama_model::load_tensors``).

    Returns
    -------
    (first_gpu_layer, repeating_layers_on_gpu, output_on_gpu)
        ``i_gpu_start = max(n_layer + 1 - n_gpu_layers, 0)``; repeating layers ``il >=
        i_gpu_start`` are offloaded; the output layer (index ``n_layer``) when
        ``n_gpu_layers > n_layer``. ``n_gpu_layers`` None or negative means all
        (``n_layer + 1``, the default of recent builds).
    """
    n_layer = int(n_layer)
    ngl = n_layer + 1 if n_gpu_layers is None or n_gpu_layers < 0 else int(n_gpu_layers)
    start = max(n_layer + 1 - ngl, 0)
    return min(start, n_layer), max(0, n_layer - start), ngl > n_layer


def weights_split_bytes(layer_bytes: Sequence[int], *, input_bytes: int, output_bytes: int,
                        n_gpu_layers: int | None) -> tuple[int, int]:
    """(GPU, host) weight bytes for a given ``-ngl``.

    Parameters
    ----------
    layer_bytes : sequence of int
        Bytes of each repeating layer, in order.
    input_bytes : int
        Token embeddings (always on the host: ``dev_input`` is the CPU).
    output_bytes : int
        Output norm + output matrix (on the GPU when ``n_gpu_layers > n_layer``). For
        tied embeddings llama.cpp duplicates the embedding as the output tensor.
    """
    start, _, out_gpu = layers_on_gpu(len(layer_bytes), n_gpu_layers)
    gpu = sum(int(b) for b in layer_bytes[start:]) + (int(output_bytes) if out_gpu else 0)
    host = sum(int(b) for b in layer_bytes[:start]) + int(input_bytes) + (0 if out_gpu else int(output_bytes))
    return gpu, host
