"""Bits per weight of every weight format, and bytes per element of KV-cache dtypes.

Weight formats are values (:class:`WeightFormat`, :class:`GGUFFormat`) that size one
matrix exactly, including its quantization metadata:

============================  ==========================================================
name                          storage per quantized matrix (rows = out, cols = in)
============================  ==========================================================
``awq`` / ``awq-int4-g128``   int4 payload + per group of 128 inputs an fp16 scale and a
                              packed int4 zero point: 4 + (16 + 4)/128 = 4.156 bits
``gptq`` / ``gptq-int{4,8}-g{N}``  as AWQ (scales fp16, packed zeros) + ``g_idx`` int32 per
                              input column; ``-g-1`` = one group per row
``fp8`` / ``fp8-per-tensor``  1 byte + one fp32 scale per matrix (vLLM ``--quantization fp8``)
``fp8-per-channel``           1 byte + one fp32 scale per output row (compressed-tensors)
``fp8-block128``              1 byte + one fp32 scale per 128 x 128 block (DeepSeek-V3, Qwen3-FP8)
``int8`` / ``w8a16``          1 byte + one fp32 scale per output row
``mxfp4``                     MoE experts only (gpt-oss): 4 bits + E8M0 scale per 32 = 4.25
``mxfp4-all``                 every linear layer at 4.25 bits
``nvfp4``                     4 bits + fp8 scale per 16 (= 4.5) + fp32 global scale per
                              matrix; ``nvfp4-experts`` for MoE-experts-only checkpoints
``bnb-nf4`` / ``bnb-fp4``     bitsandbytes 4-bit as transformers defaults it (no double quant):
                              fp32 absmax per block of 64 = 4.5 bits
``bnb-nf4-dq`` / ``bnb-fp4-dq``  double-quantized absmax (8-bit, fp32 scale per 256 blocks):
                              4 + 8/64 + 32/(64*256) = 4.127 bits
``bnb-int8``                  LLM.int8: 1 byte + fp32 scale per row
``int4-weight-only``          TensorRT-LLM INT4 weight-only: int4 + fp16 scale per row
``w{4,8}a16-g{N}``            compressed-tensors pack-quantized integer weights: payload +
                              a 16-bit scale per group (``-asym``: + packed zero point;
                              ``-actorder``: + int32 ``g_idx`` per input column); 16 bytes
                              of ``weight_shape`` per matrix; ``w4a16-channel``: per row
``int4wo-g{N}``               torchao int4 weight-only: int4 + bf16 scale and zero per group
``exl2-b{B}-h{H}`` / ``exl3-...``  ExLlamaV2/V3 at the stated average bits per weight ``B``
                              (scales included); the LM head at ``H`` bits
``<format>@mlp``              the format on MLP matrices only (dense, expert and shared),
                              attention kept in the model dtype; ``<format>@experts``: routed
                              experts only
``gguf:<TYPE>``               every matrix (embedding and output included) at the GGUF
                              type's true bits per weight; vectors F32
``gguf:<MIX>``                llama.cpp file types (Q4_K_M, ...): per-tensor types (see
                              :class:`GGUFFormat`)
============================  ==========================================================

Free text as profiles record it ("AWQ int4 (GEMM)", "GPTQ 4-bit, exllamav2 kernel",
"bitsandbytes (nf4)", "fp8 (ModelOpt)", "gguf (Q8_0)", "Q4_K - Medium", "mxfp4 MoE (...)")
is mapped to these names by :func:`weight_format` when the text determines the storage;
text that does not (EXL3, "NVFP4 (ModelOpt mixed)", "gguf" without a type, unsloth
dynamic "UD-" files, "bitsandbytes (config not seen)", compressed-tensors WNA16 without the
bit width...) raises ``ValueError``. FP8 texts without a scale layout map to per-tensor
scales: the layouts differ by less than 0.1% of the weights.

A checkpoint's own ``quantization_config`` (AWQ, GPTQ, bitsandbytes, compressed-tensors,
FP8, ModelOpt, MXFP4, AutoRound, EXL2/EXL3, torchao, FBGEMM FP8, EETQ) is turned into one of
these names by :func:`quantization_from_config`, which also states what it assumed;
:func:`checkpoint_weight_bytes` sizes the whole checkpoint (no TP, no vocabulary padding)
for comparison with its safetensors metadata.

Unless a format says otherwise it converts linear layers only: embeddings, the LM head,
routers, norms and biases stay in the model dtype (what AWQ/GPTQ/bitsandbytes/compressed-
tensors checkpoints and vLLM do).

GGUF mixes are an approximation, stated here: the tensor types follow the main rules of
llama.cpp's ``llama_tensor_get_type`` for that file type (output tensor Q6_K, or Q8_0 when
the base is Q8_0; ``attn_v`` / ``ffn_down`` raised on the ``use_more_bits`` layers for
Q4_K_M / Q5_K_M; Q3_K_M/L and Q2_K raises of ``attn_v``, ``ffn_down``, ``attn_output``;
Q4_K_S first-layer raises; 8-expert MoE ``attn_v``/``attn_k`` at Q8_0; the 70B-llama
``attn_v`` raise; k-quant fallbacks when a row is not a multiple of 256). IQ file types
(IQ2_M, IQ3_M, ...) use llama.cpp's base type and output-tensor rule only. Importance-
matrix refinements and user overrides are ignored; a real GGUF file's
``general.file_type`` and tensor list remain the ground truth.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .parameters import GGUF_FUSED_QKV, tensor_inventory

__all__ = [
    "DTYPE_BYTES", "KV_CACHE_DTYPE_BITS", "GGUF_TYPE_BITS", "WeightFormat", "GGUFFormat",
    "dtype_bytes", "normalize_dtype", "kv_cache_bytes_per_element", "weight_format", "WEIGHT_FORMATS",
    "QuantizationInfo", "UnsupportedQuantizationError", "quantization_from_config", "checkpoint_weight_bytes",
    "SAFETENSORS_DTYPE_BYTES",
]

#: bytes per element of unquantized storage dtypes.
DTYPE_BYTES = {
    "float32": 4, "fp32": 4, "f32": 4, "float": 4,
    "float16": 2, "fp16": 2, "f16": 2, "half": 2,
    "bfloat16": 2, "bf16": 2,
    "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "float8_e4m3fn": 1, "float8_e5m2": 1,
    "int8": 1, "uint8": 1,
}

_CANONICAL_DTYPE = {
    "float32": "float32", "fp32": "float32", "f32": "float32", "float": "float32",
    "float16": "float16", "fp16": "float16", "f16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
}

#: bits per KV-cache element. llama.cpp's q8_0 / q4_0 (and friends) include their fp16
#: block scale per 32 elements; vLLM's fp8 variants are 8 bits (scales per layer only).
KV_CACHE_DTYPE_BITS = {
    "float32": 32.0, "fp32": 32.0, "f32": 32.0,
    "float16": 16.0, "fp16": 16.0, "f16": 16.0, "half": 16.0,
    "bfloat16": 16.0, "bf16": 16.0,
    "fp8": 8.0, "fp8_e4m3": 8.0, "fp8_e5m2": 8.0, "fp8_inc": 8.0, "fp8_ds_mla": 8.0, "int8": 8.0,
    "q8_0": 8.5, "q5_1": 6.0, "q5_0": 5.5, "q4_1": 5.0, "q4_0": 4.5, "iq4_nl": 4.5,
}

#: true bits per weight of GGUF tensor types (block bytes x 8 / block elements).
GGUF_TYPE_BITS = {
    "F32": 32.0, "F16": 16.0, "BF16": 16.0,
    "Q8_0": 8.5,      # 32 x int8 + fp16 scale = 34 B / 32
    "Q4_0": 4.5,      # 18 B / 32
    "Q4_1": 5.0,      # 20 B / 32
    "Q5_0": 5.5,      # 22 B / 32
    "Q5_1": 6.0,      # 24 B / 32
    "Q2_K": 2.625,    # 84 B / 256
    "Q3_K": 3.4375,   # 110 B / 256
    "Q4_K": 4.5,      # 144 B / 256
    "Q5_K": 5.5,      # 176 B / 256
    "Q6_K": 6.5625,   # 210 B / 256
    "IQ4_NL": 4.5,    # 18 B / 32
    "IQ4_XS": 4.25,   # 136 B / 256
    "IQ3_S": 3.4375,  # 110 B / 256
    "IQ3_XXS": 3.0625,  # 98 B / 256
    "IQ2_S": 2.5625,  # 82 B / 256
    "IQ2_XS": 2.3125,  # 74 B / 256
    "IQ2_XXS": 2.0625,  # 66 B / 256
    "IQ1_M": 1.75,    # 56 B / 256
    "IQ1_S": 1.5625,  # 50 B / 256
}
_GGUF_BLOCK = {name: (32 if name in ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "IQ4_NL") else 1 if name in
                      ("F32", "F16", "BF16") else 256) for name in GGUF_TYPE_BITS}
#: k-quant fallback when a row length is not a multiple of the block (llama.cpp).
_GGUF_FALLBACK = {"Q2_K": "IQ4_NL", "Q3_K": "IQ4_NL", "IQ4_XS": "IQ4_NL", "IQ3_S": "IQ4_NL", "IQ3_XXS": "IQ4_NL",
                  "IQ2_S": "IQ4_NL", "IQ2_XS": "IQ4_NL", "IQ2_XXS": "IQ4_NL", "IQ1_S": "IQ4_NL", "IQ1_M": "IQ4_NL",
                  "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}
#: llama.cpp file types (mixes) -> default tensor type.
_GGUF_MIX_BASE = {
    "Q2_K": "Q2_K", "Q2_K_S": "Q2_K", "Q3_K_S": "Q3_K", "Q3_K_M": "Q3_K", "Q3_K_L": "Q3_K",
    "Q4_K_S": "Q4_K", "Q4_K_M": "Q4_K", "Q5_K_S": "Q5_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K",
    "Q4_0": "Q4_0", "Q4_1": "Q4_1", "Q5_0": "Q5_0", "Q5_1": "Q5_1", "Q8_0": "Q8_0",
    "F16": "F16", "BF16": "BF16", "F32": "F32", "IQ4_NL": "IQ4_NL", "IQ4_XS": "IQ4_XS",
    # IQ file types (llama_model_quantize_impl default_type)
    "IQ2_XXS": "IQ2_XXS", "IQ2_XS": "IQ2_XS", "IQ2_S": "IQ2_XS", "IQ2_M": "IQ2_S", "IQ3_XXS": "IQ3_XXS",
    "IQ3_XS": "IQ3_S", "IQ3_S": "IQ3_S", "IQ3_M": "IQ3_S", "IQ1_S": "IQ1_S", "IQ1_M": "IQ1_M",
}
#: IQ file types whose output tensor llama.cpp stores as Q5_K (others: Q6_K).
_GGUF_OUTPUT_Q5K = frozenset({"IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"})


def _leading_word(text: str) -> str:
    """``'bfloat16 (torch_dtype)'`` -> ``'bfloat16'`` (free-text values as profiles record them)."""
    return re.split(r"[\s(,;]", text.strip(), maxsplit=1)[0]


def normalize_dtype(name: str | None) -> str | None:
    """Canonical unquantized dtype name (``float32``/``float16``/``bfloat16``), None for None/auto.

    Free text is reduced to its leading word (``"bfloat16 (torch_dtype)"``); ambiguous text
    such as ``"bf16/fp16"`` raises ``ValueError``.
    """
    if name is None:
        return None
    key = str(name).lower().replace("torch.", "").strip()
    if key in ("auto", ""):
        return None
    if key not in _CANONICAL_DTYPE:
        key = _leading_word(key)
        if key == "auto":
            return None
    try:
        return _CANONICAL_DTYPE[key]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; expected one of float32, float16, bfloat16, auto "
                         "(1-byte weight formats such as fp8 / int8 go in quantization=)") from None


def dtype_bytes(name: str) -> int:
    """Bytes per element of an unquantized storage dtype (``float32`` 4, ``bfloat16`` 2, ``fp8`` 1...)."""
    key = str(name).lower().replace("torch.", "")
    try:
        return DTYPE_BYTES[key]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; expected one of {sorted(DTYPE_BYTES)}") from None


def kv_cache_bytes_per_element(kv_cache_dtype: str | None, model_dtype: str) -> float:
    """Bytes per cached K or V element.

    Parameters
    ----------
    kv_cache_dtype : str or None
        ``auto`` / None (= ``model_dtype``), ``float32``, ``float16``, ``bfloat16``,
        ``fp8`` / ``fp8_e4m3`` / ``fp8_e5m2``, ``int8`` (per-element payload only), or
        llama.cpp ``q8_0`` (8.5 bits), ``q4_0`` (4.5 bits), ``q4_1``, ``q5_0``, ``q5_1``,
        ``iq4_nl``. Free text is reduced to its leading word (``"fp8 (auto-inferred)"``).
    model_dtype : str
        Dtype used for ``auto``.

    Returns
    -------
    float
        Bytes per element (fractional for block-quantized llama.cpp types).
    """
    key = "auto" if kv_cache_dtype is None else str(kv_cache_dtype).lower().replace("torch.", "").strip()
    if key not in KV_CACHE_DTYPE_BITS and key != "auto":
        key = _leading_word(key)  # "fp8 (auto-inferred)" -> "fp8"
    if key in ("auto", ""):
        key = str(model_dtype).lower()
    try:
        return KV_CACHE_DTYPE_BITS[key] / 8.0
    except KeyError:
        raise ValueError(
            f"unknown kv_cache_dtype {kv_cache_dtype!r}; expected auto or one of {sorted(KV_CACHE_DTYPE_BITS)}"
        ) from None


@dataclass(frozen=True)
class WeightFormat:
    """A weight-quantization format and the exact size of one quantized matrix.

    Attributes
    ----------
    name : str
    bits : float
        Payload bits per weight.
    scope : str
        ``linear`` (every linear layer in the decoder, not embeddings / LM head / routers),
        ``experts`` (routed MoE experts only) or ``all_matrices`` (embeddings and LM head too).
    group_size : int
        Weights per scale group along the input dimension; 0 = no groups, -1 = one group per row.
    group_bits : float
        Bits of metadata per group (scale + zero point).
    row_bytes : float
        Bytes of metadata per output row (per-channel scales).
    tensor_bytes : float
        Bytes of metadata per matrix (per-tensor scales).
    block : int
        Side of square scale blocks (0 = none); ``block_bytes`` per block.
    col_bytes : float
        Bytes per input column (GPTQ ``g_idx``).
    description : str
    head_bits : float
        Bits per weight of the LM head when the format quantizes it (EXL2/EXL3); 0 = the LM
        head stays in the model dtype. Pass ``role="lm_head"`` to :meth:`matrix_bytes`.
    """

    name: str
    bits: float
    scope: str = "linear"
    group_size: int = 0
    group_bits: float = 0.0
    row_bytes: float = 0.0
    tensor_bytes: float = 0.0
    block: int = 0
    block_bytes: float = 0.0
    col_bytes: float = 0.0
    description: str = ""
    head_bits: float = 0.0

    def applies_to(self, spec) -> bool:
        """Does this format convert the tensor ``spec`` (a :class:`~fitting.physics.parameters.TensorSpec`)?"""
        if self.head_bits and spec.role == "lm_head":
            return True
        if self.scope == "experts":
            return spec.quantizable and spec.kind == "expert"
        if self.scope == "mlp":
            return spec.quantizable and spec.role in _MLP_ROLES
        if self.scope == "all_matrices":
            return spec.is_matrix and spec.role in ("embedding", "lm_head") or spec.quantizable
        return spec.quantizable

    def matrix_bytes(self, rows, cols, role: str | None = None):
        """Bytes of one quantized ``rows x cols`` matrix incl. metadata (numpy-broadcastable).

        ``role="lm_head"`` sizes the LM head of formats with :attr:`head_bits`.
        """
        rows = np.asarray(rows, dtype=float)
        cols = np.asarray(cols, dtype=float)
        if role == "lm_head" and self.head_bits:
            return rows * cols * self.head_bits / 8.0
        out = rows * cols * self.bits / 8.0
        if self.group_size > 0:
            out = out + rows * np.ceil(cols / self.group_size) * self.group_bits / 8.0
        elif self.group_size < 0:
            out = out + rows * self.group_bits / 8.0
        if self.row_bytes:
            out = out + rows * self.row_bytes
        if self.block:
            out = out + np.ceil(rows / self.block) * np.ceil(cols / self.block) * self.block_bytes
        out = out + cols * self.col_bytes + self.tensor_bytes
        return out

    @property
    def effective_bits(self) -> float:
        """Bits per weight of a large matrix (4096 x 4096) including metadata."""
        return float(self.matrix_bytes(4096, 4096)) * 8.0 / 4096**2


_MLP_ROLES = frozenset({"mlp_gate", "mlp_up", "mlp_down"})


def _awq(bits: int, group: int) -> WeightFormat:
    return WeightFormat(f"awq-int{bits}-g{group}", bits, group_size=group, group_bits=16 + bits,
                        description=f"AWQ int{bits}, fp16 scale + packed int{bits} zero per {group} inputs")


def _gptq(bits: int, group: int) -> WeightFormat:
    return WeightFormat(f"gptq-int{bits}-g{group}", bits, group_size=group, group_bits=16 + bits, col_bytes=4,
                        description=f"GPTQ int{bits}, fp16 scale + packed zero per {group} inputs, int32 g_idx")


def _wna16(bits: int, group: str, asym: bool, actorder: bool) -> WeightFormat:
    """compressed-tensors ``pack-quantized`` integer weights (llm-compressor W4A16 / W8A16)."""
    name = f"w{bits}a16-{group}" + ("-asym" if asym else "") + ("-actorder" if actorder else "")
    zero = bits if asym else 0
    if group == "channel":
        return WeightFormat(name, bits, row_bytes=(16 + zero) / 8, tensor_bytes=16,
                            description=f"compressed-tensors int{bits}, 16-bit scale per output row")
    size = int(group[1:])
    return WeightFormat(name, bits, group_size=size, group_bits=16 + zero, tensor_bytes=16,
                        col_bytes=4 if actorder else 0,
                        description=f"compressed-tensors int{bits}, 16-bit scale{' + zero' if asym else ''} per "
                                    f"{size} inputs{', int32 g_idx' if actorder else ''}, int64 weight_shape")


def _exl(kind: str, bits: float, head: float) -> WeightFormat:
    return WeightFormat(f"{kind}-b{bits:g}-h{head:g}", bits, head_bits=head,
                        description=f"{kind.upper()} at {bits:g} bits per weight on average (scales included), "
                                    f"LM head at {head:g} bits")


def _int4wo(group: int) -> WeightFormat:
    return WeightFormat(f"int4wo-g{group}", 4, group_size=group, group_bits=32,
                        description=f"torchao int4 weight-only, bf16 scale and zero per {group} inputs")


_BNB_DQ_BITS = 4 + 8 / 64 + 32 / (64 * 256)

WEIGHT_FORMATS: dict[str, WeightFormat] = {
    "awq": _awq(4, 128),
    "gptq": _gptq(4, 128),
    "fp8-per-tensor": WeightFormat("fp8-per-tensor", 8, tensor_bytes=4,
                                   description="FP8 e4m3 weights, one fp32 scale per matrix (vLLM dynamic fp8)"),
    "fp8-per-channel": WeightFormat("fp8-per-channel", 8, row_bytes=4,
                                    description="FP8 e4m3 weights, fp32 scale per output channel"),
    "fp8-block128": WeightFormat("fp8-block128", 8, block=128, block_bytes=4,
                                 description="FP8 e4m3 weights, fp32 scale per 128x128 block (DeepSeek-V3 style)"),
    "int8": WeightFormat("int8", 8, row_bytes=4, description="int8 weights, fp32 scale per output channel"),
    "mxfp4": WeightFormat("mxfp4", 4, scope="experts", group_size=32, group_bits=8,
                          description="MXFP4 MoE experts (E2M1 + E8M0 scale per 32), rest unquantized"),
    "mxfp4-all": WeightFormat("mxfp4-all", 4, group_size=32, group_bits=8,
                              description="MXFP4 on every linear layer"),
    "nvfp4": WeightFormat("nvfp4", 4, group_size=16, group_bits=8, tensor_bytes=8,
                          description="NVFP4: E2M1 + fp8 scale per 16 + fp32 global weight/input scales"),
    "nvfp4-experts": WeightFormat("nvfp4-experts", 4, scope="experts", group_size=16, group_bits=8, tensor_bytes=8,
                                  description="NVFP4 MoE experts only"),
    "bnb-nf4": WeightFormat("bnb-nf4", 4, group_size=64, group_bits=32,
                            description="bitsandbytes NF4, fp32 absmax per 64 (transformers default, no double quant)"),
    "bnb-nf4-dq": WeightFormat("bnb-nf4-dq", _BNB_DQ_BITS, tensor_bytes=8,
                               description="bitsandbytes NF4, blocks of 64, double-quantized absmax"),
    "bnb-fp4": WeightFormat("bnb-fp4", 4, group_size=64, group_bits=32,
                            description="bitsandbytes FP4, fp32 absmax per 64 (transformers default)"),
    "bnb-fp4-dq": WeightFormat("bnb-fp4-dq", _BNB_DQ_BITS, tensor_bytes=8,
                               description="bitsandbytes FP4, blocks of 64, double-quantized absmax"),
    "bnb-int8": WeightFormat("bnb-int8", 8, row_bytes=4, description="bitsandbytes LLM.int8, fp32 scale per row"),
    "int4-weight-only": WeightFormat("int4-weight-only", 4, row_bytes=2,
                                     description="INT4 weight-only (TensorRT-LLM), fp16 scale per output row"),
}

_ALIASES = {
    "awq_marlin": "awq", "awq-int4": "awq", "awq-int4-g128": "awq", "gptq_marlin": "gptq", "gptq-int4": "gptq",
    "gptq-int4-g128": "gptq", "fp8": "fp8-per-tensor", "fp8_dynamic": "fp8-per-tensor",
    "fp8_block": "fp8-block128", "fp8-block": "fp8-block128",
    "w8a16": "int8", "w8a8": "int8", "int8-per-channel": "int8", "modelopt_fp4": "nvfp4",
    "bnb-4bit": "bnb-nf4", "nf4": "bnb-nf4", "bitsandbytes-nf4": "bnb-nf4", "bnb-8bit": "bnb-int8",
    "llm.int8": "bnb-int8", "int4_awq": "awq", "modelopt": "fp8-per-tensor",
}
_PARAM_RE = re.compile(r"^(awq|gptq)-int(2|3|4|8)-g(-?\d+)$")
_WNA16_RE = re.compile(r"^w(4|8)a16-(g\d+|channel)(-asym)?(-actorder)?$")
_EXL_RE = re.compile(r"^(exl2|exl3)-b(\d+(?:\.\d+)?)-h(\d+(?:\.\d+)?)$")
_INT4WO_RE = re.compile(r"^int4wo-g(\d+)$")
#: ``<format>@<scope>`` restricts a format to part of the model.
_SCOPES = ("mlp", "experts")


@dataclass(frozen=True)
class GGUFFormat:
    """A GGUF file type: one tensor type everywhere (``gguf:Q8_0``) or a llama.cpp mix.

    Matrices (embedding and output included) take the type chosen by :meth:`tensor_type`;
    vectors (norms, biases) are F32. See the module docstring for the approximation.
    """

    name: str
    base: str
    mix: bool

    def tensor_type(self, spec, layer: int | None, arch) -> str:
        """GGUF type of one matrix of ``spec`` in layer ``layer``."""
        if not spec.is_matrix:
            return "F32"
        base = self.base
        new = base
        if self.mix and base not in ("F32", "F16", "BF16"):
            new = self._mix_type(spec, layer, arch)
        if _GGUF_BLOCK.get(new, 1) > 1 and spec.cols % _GGUF_BLOCK[new]:
            new = _GGUF_FALLBACK.get(new, new)
            if spec.cols % _GGUF_BLOCK.get(new, 1):
                new = "F16"
        return new

    def _mix_type(self, spec, layer, arch) -> str:
        ftype, base, role = self.name, self.base, spec.role
        is_output = role == "lm_head" or (role == "embedding" and arch.tie_word_embeddings)
        if is_output:
            if arch.text_model_type in ("falcon", "RefinedWeb", "RefinedWebModel") or spec.cols % 256:
                return "Q8_0"
            if ftype in _GGUF_OUTPUT_Q5K:
                return "Q5_K"
            return base if base == "Q8_0" else "Q6_K"
        if role == "embedding":
            if ftype in ("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
                return "Q2_K"
            if ftype in ("IQ2_S", "IQ2_M"):
                return "IQ3_S"
            return base
        if ftype.startswith("IQ"):
            return base
        n_layers = arch.num_layers
        n_expert = arch.num_experts or 0
        n_gqa = arch.num_attention_heads // max(arch.num_kv_heads, 1)
        fused = arch.text_model_type in GGUF_FUSED_QKV
        falcon = arch.text_model_type in ("falcon", "RefinedWeb", "RefinedWebModel")
        i = layer if layer is not None else 0
        if role in ("attn_q", "attn_k", "attn_v") and fused:
            if ftype in ("Q3_K_M", "Q3_K_L"):
                return "Q4_K"
            if ftype == "Q4_K_M":
                return "Q5_K"
            if ftype == "Q5_K_M":
                return "Q6_K"
            return base
        if role == "attn_v":
            new = base
            if ftype == "Q2_K":
                new = "Q4_K" if n_gqa >= 4 else "Q3_K"
            elif ftype == "Q2_K_S" and n_gqa >= 4:
                new = "Q4_K"
            elif ftype == "Q3_K_M":
                new = "Q5_K" if i < 2 else "Q4_K"
            elif ftype == "Q3_K_L":
                new = "Q5_K"
            elif ftype in ("IQ4_NL", "IQ4_XS") and n_gqa >= 4:
                new = "Q5_K"
            elif ftype in ("Q4_K_M", "Q5_K_M") and _use_more_bits(i, n_layers):
                new = "Q6_K"
            elif ftype == "Q4_K_S" and i < 4:
                new = "Q5_K"
            if _is_llama_70b(arch) and new in ("Q3_K", "Q4_K"):
                new = "Q5_K"
            if n_expert == 8:
                new = "Q8_0"
            return new
        if role == "attn_k" and n_expert == 8:
            return "Q8_0"
        if role == "mlp_down":
            if ftype == "Q2_K":
                return "Q3_K"
            if ftype == "Q2_K_S":
                return "Q4_K" if i < n_layers // 8 else base
            if ftype == "Q3_K_M":
                if i < n_layers // 16:
                    return "Q5_K"
                return "Q4_K" if (not falcon or _use_more_bits(i, n_layers)) else "Q3_K"
            if ftype == "Q3_K_L":
                return "Q4_K" if falcon else "Q5_K"
            if ftype == "Q4_K_M":
                if falcon:
                    return "Q6_K" if i < n_layers // 16 else ("Q5_K" if _use_more_bits(i, n_layers) else "Q4_K")
                return "Q6_K" if _use_more_bits(i, n_layers) else base
            if ftype in ("IQ4_NL", "IQ4_XS") and i < n_layers // 8:
                return "Q5_K"
            if ftype == "Q5_K_M" and _use_more_bits(i, n_layers):
                return "Q6_K"
            if ftype == "Q4_K_S" and not falcon and i < n_layers // 8:
                return "Q5_K"
            return base
        if role == "attn_o":
            if not falcon:
                if n_expert == 8:
                    if ftype in ("Q2_K", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ4_XS"):
                        return "Q5_K"
                    return base
                return {"Q2_K": "Q3_K", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K"}.get(ftype, base)
            return "Q4_K" if ftype == "Q3_K_L" else base
        return base


def _use_more_bits(i_layer: int, n_layers: int) -> bool:
    """llama.cpp: layers that get more bits in Q4_K_M/Q5_K_M mixes."""
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


def _is_llama_70b(arch) -> bool:
    return arch.text_model_type in ("llama", "mistral") and arch.num_layers == 80 and arch.hidden_size == 8192


_AMBIGUOUS = ("exl3", "exl2", "ud-", "config not seen", "modelopt mixed", "modelopt_mixed", "nvfp4 + fp8",
              "wna16", "moe_wna16", "turbomind", "hifi")
_GGUF_WORDS = {"SMALL": "S", "MEDIUM": "M", "LARGE": "L"}


def _from_text(text: str) -> str | None:
    """Canonical format name for a free-text description, None when the text does not say.

    >>> _from_text("AWQ int4 (GEMM)"), _from_text("Q4_K - Medium"), _from_text("gguf (Q8_0)")
    ('awq-int4-g128', 'gguf:Q4_K_M', 'gguf:Q8_0')
    """
    low = text.strip().lower()
    if any(word in low for word in _AMBIGUOUS):
        return None
    gg = re.match(r"^\s*(?:gguf\s*\(\s*)?([a-z0-9_]+?)(?:\s*-\s*(small|medium|large|[0-9.]+\s*bpw))?\s*\)?\s*$",
                  low)
    if gg:
        name = gg.group(1).upper()
        size = (gg.group(2) or "").upper()
        if size in _GGUF_WORDS:  # llama.cpp prints "Q4_K - Medium"; "Q2_K - Medium" is plain Q2_K
            name = name if (name == "Q2_K" and size == "MEDIUM") else f"{name}_{_GGUF_WORDS[size]}"
        if name in _GGUF_MIX_BASE or name in GGUF_TYPE_BITS:
            return f"gguf:{name}"
    bits8 = re.search(r"\b(int8|8-?bit|w8a16|w8a8)\b", low) is not None
    group = re.search(r"\bg(\d+)\b", low)
    if re.match(r"awq\b", low) or "int4_awq" in low:
        return f"awq-int{8 if bits8 else 4}-g{group.group(1) if group else 128}"
    if re.match(r"(gptq|w4a16)\b", low) or "autoround" in low or "auto_round" in low:
        return f"gptq-int{8 if bits8 else 4}-g{group.group(1) if group else 128}"
    if "bitsandbytes" in low or "bnb" in low:
        if bits8:
            return "bnb-int8"
        if "4" in low or "nf4" in low or "fp4" in low:
            kind = "fp4" if "fp4" in low else "nf4"
            return f"bnb-{kind}-dq" if ("double" in low or "dq" in low.split()) else f"bnb-{kind}"
        return None
    if re.match(r"mxfp4\b", low):
        return "mxfp4"
    if "nvfp4" in low:
        return "nvfp4-experts" if "moe experts" in low else "nvfp4"
    if re.match(r"fp8\b", low):
        if "block" in low:
            return "fp8-block128"
        if "channel" in low:
            return "fp8-per-channel"
        return "fp8-per-tensor"
    if "int4 weight-only" in low or "int4_weights" in low:
        return "int4-weight-only"
    if bits8 and ("compressed-tensors" in low or low.startswith(("w8a16", "int8"))):
        return "int8"
    return None


def weight_format(name: str | None) -> WeightFormat | GGUFFormat | None:
    """Parse a weight-quantization name.

    Parameters
    ----------
    name : str or None
        None / ``"none"`` for unquantized weights, one of :data:`WEIGHT_FORMATS` (or an alias
        such as ``awq_marlin``, ``fp8``), ``awq-int4-g64`` / ``gptq-int8-g128`` /
        ``gptq-int4-g-1`` forms, or ``gguf:<TYPE or MIX>`` (``gguf:Q4_K_M``, ``gguf:Q8_0``;
        a bare GGUF name such as ``Q4_K_M`` is accepted too), or free text that determines
        the storage (module docstring).

    Returns
    -------
    WeightFormat, GGUFFormat or None

    Raises
    ------
    ValueError
        Unknown name; the message lists the accepted names.
    """
    if name is None:
        return None
    key = str(name).strip()
    low = key.lower()
    if low in ("", "none", "null", "unquantized"):
        return None
    if low.startswith("gguf:") or key.upper() in _GGUF_MIX_BASE or key.upper() in GGUF_TYPE_BITS:
        gname = key.split(":", 1)[1] if low.startswith("gguf:") else key
        gname = gname.upper()
        if gname in _GGUF_MIX_BASE:
            base = _GGUF_MIX_BASE[gname]
            return GGUFFormat(gname, base, mix=base not in ("F32", "F16", "BF16"))
        if gname in GGUF_TYPE_BITS:
            return GGUFFormat(gname, gname, mix=False)
        raise ValueError(f"unknown GGUF type {gname!r}; expected one of {sorted(set(_GGUF_MIX_BASE) | set(GGUF_TYPE_BITS))}")
    if "@" in low:
        base, _, scope = low.rpartition("@")
        if scope in _SCOPES and base:
            fmt = weight_format(base)
            if isinstance(fmt, WeightFormat) and fmt.scope == "linear":
                return dataclasses.replace(fmt, name=f"{fmt.name}@{scope}", scope=scope,
                                           description=f"{fmt.description}; {scope} matrices only")
    low = _ALIASES.get(low, low)
    if low in WEIGHT_FORMATS:
        return WEIGHT_FORMATS[low]
    m = _PARAM_RE.match(low)
    if m:
        kind, bits, group = m.group(1), int(m.group(2)), int(m.group(3))
        return (_awq if kind == "awq" else _gptq)(bits, group)
    m = _WNA16_RE.match(low)
    if m:
        return _wna16(int(m.group(1)), m.group(2), bool(m.group(3)), bool(m.group(4)))
    m = _EXL_RE.match(low)
    if m:
        return _exl(m.group(1), float(m.group(2)), float(m.group(3)))
    m = _INT4WO_RE.match(low)
    if m:
        return _int4wo(int(m.group(1)))
    mapped = _from_text(key)
    if mapped is not None:
        return weight_format(mapped)
    raise ValueError(
        f"unknown weight quantization {name!r}; expected None, one of {sorted(WEIGHT_FORMATS)}, "
        "awq-int{2,3,4,8}-g<N>, gptq-int{2,3,4,8}-g<N>, w{4,8}a16-g<N>[-asym][-actorder], exl2-b<B>-h<H>, "
        "int4wo-g<N>, <format>@mlp / @experts, or gguf:<TYPE|MIX> (e.g. gguf:Q4_K_M)"
    )

