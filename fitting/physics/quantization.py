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
``mlx-b{B}-g{N}``             MLX affine: B bits + 16-bit scale and bias per N inputs, on every
                              matrix incl. embeddings and the LM head (mlx-lm, LM Studio MLX)
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


def _mlx(bits: int, group: int) -> WeightFormat:
    return WeightFormat(f"mlx-b{bits}-g{group}", bits, scope="all_matrices", group_size=group, group_bits=32,
                        description=f"MLX {bits}-bit, 16-bit scale and bias per {group} inputs, embeddings and LM "
                                    "head included")


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
_MLX_RE = re.compile(r"^mlx-b(2|3|4|5|6|8)-g(\d+)$")
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


#: llama.cpp's printed file-type names ("model ftype" / "file type" lines) of the K-quant and
#: i-quant mixes: llama-model-loader.cpp ``llama_model_ftype_name`` prints
#: LLAMA_FTYPE_MOSTLY_Q4_K_M as "Q4_K - Medium", Q2_K as "Q2_K - Medium", IQ3_M as "IQ3_S mix -
#: 3.66 bpw", IQ2_XXS as "IQ2_XXS - 2.0625 bpw"; 2023 builds prefix "mostly ", a file type read
#: from the tensors ends in " (guessed)".
_LLAMA_KQUANT_SIZE = re.compile(r"^(Q[2-6]_K) - (SMALL|MEDIUM|LARGE)$")
_LLAMA_BPW = re.compile(r"^(I?Q\w+?)(?: MIX)? - [\d.]+ BPW(?: TERNARY)?$")


def _llama_ftype_name(name: str) -> str | None:
    """The GGUF type or mix name of a llama.cpp file-type name, or None when it is none.

    >>> [_llama_ftype_name(s) for s in ("Q4_K - Medium", "Q2_K - Medium", "mostly Q4_0", "IQ3_S mix - 3.66 bpw")]
    ['Q4_K_M', 'Q2_K', 'Q4_0', 'IQ3_M']
    """
    key = str(name).strip().upper()
    if key.endswith(" (GUESSED)"):
        key = key[: -len(" (GUESSED)")].strip()
    if key.startswith("MOSTLY "):
        key = key[len("MOSTLY "):].strip()
    if key == "ALL F32":
        key = "F32"
    m = _LLAMA_KQUANT_SIZE.match(key)
    if m:
        base, size = m.group(1), m.group(2)[0]
        key = "Q2_K" if (base, size) == ("Q2_K", "M") else f"{base}_{size}"
    m = _LLAMA_BPW.match(key)
    if m:
        key = "IQ3_M" if key.startswith("IQ3_S MIX") else m.group(1)
    return key if key in _GGUF_MIX_BASE or key in GGUF_TYPE_BITS else None


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
    if low.startswith("gguf:") or _llama_ftype_name(key) is not None:
        gname = key.split(":", 1)[1] if low.startswith("gguf:") else key
        gname = _llama_ftype_name(gname) or gname.upper()
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
    m = _MLX_RE.match(low)
    if m:
        return _mlx(int(m.group(1)), int(m.group(2)))
    mapped = _from_text(key)
    if mapped is not None:
        return weight_format(mapped)
    raise ValueError(
        f"unknown weight quantization {name!r}; expected None, one of {sorted(WEIGHT_FORMATS)}, "
        "awq-int{2,3,4,8}-g<N>, gptq-int{2,3,4,8}-g<N>, w{4,8}a16-g<N>[-asym][-actorder], exl2-b<B>-h<H>, "
        "int4wo-g<N>, <format>@mlp / @experts, or gguf:<TYPE|MIX> (e.g. gguf:Q4_K_M)"
    )



# ----------------------------------------------------------------------------- checkpoints
#: bytes per element of the dtypes a safetensors header names (``F4`` = float4 e2m1 packed in pairs).
SAFETENSORS_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
    "C64": 8, "F4": 0.5, "F6_E2M3": 0.75, "F6_E3M2": 0.75,
}


class UnsupportedQuantizationError(ValueError):
    """A ``quantization_config`` whose storage cannot be sized (the message names the method and fields)."""


@dataclass(frozen=True)
class QuantizationInfo:
    """What a checkpoint's ``quantization_config`` says, as a :func:`weight_format` name.

    Attributes
    ----------
    method : str
        ``quant_method`` as stated (``awq``, ``gptq``, ``bitsandbytes``, ``compressed-tensors``...).
    format : str
        The :func:`weight_format` name that sizes its storage.
    description : str
        One line for humans (bits, group size, scales).
    assumptions : tuple of str
        What was assumed where the config does not say, or what the physics does not model
        (e.g. modules kept unquantized in some layers only).
    not_converted : tuple of str
        Modules the config keeps unquantized, as stated.
    unknown_fields : tuple of str
        Fields of the config that were not read.
    kv_cache_dtype : str or None
        A KV-cache quantization the checkpoint ships scales for (``fp8``), else None.
    """

    method: str
    format: str
    description: str
    assumptions: tuple = ()
    not_converted: tuple = ()
    unknown_fields: tuple = ()
    kv_cache_dtype: str | None = None


_COMMON_QFIELDS = frozenset({
    "quant_method", "modules_to_not_convert", "version", "backend", "modules_in_block_to_quantize",
    "model_name_or_path", "model_file_base_name", "quantizer", "meta", "tokenizer", "dataset",
    "use_exllama", "exllama_config", "use_cuda_fp16", "max_input_length", "cache_block_outputs", "batch_size",
    "pad_token_id", "module_name_preceding_first_block", "block_name_to_quantize", "damp_percent",
    "damp_auto_increment", "true_sequential", "static_groups", "pack_dtype", "amp", "nsamples", "iters",
    "seqlen", "lr", "minmax_lr", "enable_quanted_input", "enable_minmax_tuning", "low_gpu_mem_usage",
    "scale_dtype", "autoround_version", "to_quant_block_names", "sym", "zero_point", "desc_act", "data_type",
    "act_bits", "act_group_size", "act_sym", "act_dynamic", "act_data_type", "mse", "mse_grid",
    "v2", "v2_alpha", "v2_memory_device", "hyb_act", "mock_quantization", "format", "producer",
    "calibration", "quantized_by", "act_order", "is_marlin_format", "checkpoint_format", "adapter",
})
_ATTN_WORDS = ("self_attn", "attention", "attn")
_LAYER_SPECIFIC = re.compile(r"layers?\.\d+\.")


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _exclusions(names: list[str]) -> tuple[str, list[str]]:
    """Scope suffix implied by modules kept unquantized, and notes for what is not modelled.

    Attention kept unquantized in every layer (``self_attn``, ``model.layers.*.self_attn``,
    ``re:.*self_attn.*``, or all of q/k/v/o) gives ``@mlp``; modules named for single layers
    (``model.layers.0.mlp.down_proj``) are noted, not modelled.
    """
    notes: list[str] = []
    generic = [n.lower() for n in names if not _LAYER_SPECIFIC.search(n)]
    specific = [n for n in names if _LAYER_SPECIFIC.search(n)]
    whole = re.compile(r"(self_attn|attention|attn)(\W*|\.\*|\*)$")
    projections = {p for n in generic for p in ("q_proj", "k_proj", "v_proj", "o_proj") if n.endswith(p)}
    suffix = "@mlp" if any(whole.search(n) for n in generic) or len(projections) == 4 else ""
    if specific:
        notes.append(f"{len(specific)} layer-specific modules are kept unquantized (e.g. {specific[0]}): "
                     "not modelled, the physics weights are a slight underestimate; the safetensors metadata is exact")
    return suffix, notes


def _unknown(qcfg: Mapping[str, Any], known: set) -> tuple[str, ...]:
    return tuple(sorted(k for k in qcfg if k not in known and k not in _COMMON_QFIELDS))


def _fmt_check(name: str) -> str:
    weight_format(name)  # raises if the physics cannot size it
    return name


def quantization_from_config(qcfg: Mapping[str, Any] | None) -> QuantizationInfo | None:
    """Weight format of a checkpoint from its ``quantization_config`` (config.json), or from
    ``quantize_config.json`` / ``hf_quant_config.json`` content.

    Parameters
    ----------
    qcfg : Mapping or None
        The mapping as stored. ModelOpt's ``hf_quant_config.json`` (``{"quantization": {...}}``)
        and AutoGPTQ's ``quantize_config.json`` (no ``quant_method``, ``bits`` present) are
        accepted too.

    Returns
    -------
    QuantizationInfo or None
        None for ``None`` / an empty mapping.

    Raises
    ------
    UnsupportedQuantizationError
        A method whose storage the physics cannot size (HQQ, quanto, AQLM, mixed per-layer
        precision...); the message names the method and its fields.

    Examples
    --------
    >>> quantization_from_config({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True}).format
    'awq-int4-g128'
    """
    if not qcfg:
        return None
    if not isinstance(qcfg, Mapping):
        raise UnsupportedQuantizationError(f"quantization_config must be a mapping, got {type(qcfg).__name__}")
    if "quant_method" not in qcfg and isinstance(qcfg.get("quantization"), Mapping):  # hf_quant_config.json
        inner = dict(qcfg["quantization"])
        inner.setdefault("quant_method", "modelopt")
        qcfg = inner
    method = str(qcfg.get("quant_method") or "").lower()
    if not method and "bits" in qcfg:
        plain = {k for k, v in qcfg.items() if not isinstance(v, Mapping)}
        # mlx-lm writes {"group_size", "bits"} (+ per-module overrides); AutoGPTQ's quantize_config.json more keys
        method = "mlx" if plain <= {"group_size", "bits", "mode"} else "gptq"
    handler = _QUANT_HANDLERS.get(method)
    if handler is None:
        fields = ", ".join(sorted(qcfg)) or "none"
        raise UnsupportedQuantizationError(
            f"quantization_config quant_method {method or '(none)'!r} is not sized by the physics (fields: {fields}); "
            "pass the weight format explicitly (--quantization, e.g. awq, gptq-int4-g128, fp8, bnb-nf4) or give "
            "the safetensors metadata")
    return handler(method, dict(qcfg))


def _q_awq(method, q):
    bits = int(q.get("bits", q.get("w_bit", 4)))
    group = int(q.get("group_size", q.get("q_group_size", 128)))
    notes = []
    if "bits" not in q and "w_bit" not in q:
        notes.append("bits not stated: 4 assumed")
    if "group_size" not in q and "q_group_size" not in q:
        notes.append("group_size not stated: 128 assumed")
    if q.get("zero_point") is False:
        notes.append("zero_point false: the packed zero points of the format are counted anyway (+0.03 bits)")
    excluded = _as_list(q.get("modules_to_not_convert"))
    suffix, more = _exclusions(excluded)
    name = _fmt_check(f"awq-int{bits}-g{group}{suffix}")
    return QuantizationInfo(method, name, f"AWQ int{bits}, group {group} ({q.get('version', 'gemm')})",
                            tuple(notes + more), tuple(excluded),
                            _unknown(q, {"bits", "w_bit", "group_size", "q_group_size"}))


def _q_gptq(method, q):
    bits = int(q.get("bits", 4))
    group = int(q.get("group_size", 128))
    notes = []
    if "group_size" not in q:
        notes.append("group_size not stated: 128 assumed")
    if q.get("desc_act"):
        notes.append("desc_act true (act-order): g_idx permutes the groups; the storage is the same")
    if q.get("lm_head"):
        notes.append("lm_head quantized: not modelled (the LM head is counted in the model dtype)")
    fmt = str(q.get("checkpoint_format") or q.get("format") or "gptq")
    if "marlin" in fmt:
        notes.append(f"checkpoint_format {fmt}: repacked weights, sized as the GPTQ layout")
    excluded = _as_list(q.get("modules_to_not_convert")) + _as_list(q.get("dynamic") and list(q["dynamic"]))
    suffix, more = _exclusions(excluded)
    if bits not in (2, 3, 4, 8):
        raise UnsupportedQuantizationError(f"GPTQ with bits={bits}: only 2, 3, 4 and 8 are sized")
    name = _fmt_check(f"gptq-int{bits}-g{group}{suffix}")
    return QuantizationInfo(method, name, f"GPTQ int{bits}, group {group}, desc_act {bool(q.get('desc_act'))}, "
                            f"sym {q.get('sym', True)}", tuple(notes + more), tuple(excluded),
                            _unknown(q, {"bits", "group_size", "lm_head", "dynamic"}))


def _q_autoround(method, q):
    packing = str(q.get("packing_format") or q.get("backend") or q.get("format") or "auto_round:gptq").lower()
    bits = int(q.get("bits", 4))
    group = int(q.get("group_size", 128))
    notes = [f"AutoRound packing {packing}: stored as the {'AWQ' if 'awq' in packing else 'GPTQ'} layout"]
    if q.get("extra_config"):
        notes.append("extra_config sets other bits for some layers: not modelled")
    if str(q.get("data_type", "int")).lower() not in ("int", "int_sym", "int_asym"):
        raise UnsupportedQuantizationError(f"AutoRound data_type {q.get('data_type')!r}: only integer weights are sized")
    excluded = _as_list(q.get("modules_to_not_convert"))
    suffix, more = _exclusions(excluded)
    kind = "awq" if "awq" in packing else "gptq"
    name = _fmt_check(f"{kind}-int{bits}-g{group}{suffix}")
    return QuantizationInfo(method, name, f"AutoRound int{bits}, group {group}, sym {q.get('sym', True)}",
                            tuple(notes + more), tuple(excluded),
                            _unknown(q, {"bits", "group_size", "packing_format", "extra_config"}))


def _q_bnb(method, q):
    four = bool(q.get("load_in_4bit") or q.get("_load_in_4bit"))
    eight = bool(q.get("load_in_8bit") or q.get("_load_in_8bit"))
    skip = _as_list(q.get("llm_int8_skip_modules"))
    suffix, notes = _exclusions(skip)
    if four:
        kind = str(q.get("bnb_4bit_quant_type") or "fp4").lower()
        if "bnb_4bit_quant_type" not in q:
            notes.append("bnb_4bit_quant_type not stated: fp4 (the bitsandbytes default) assumed")
        dq = bool(q.get("bnb_4bit_use_double_quant"))
        name = f"bnb-{kind}{'-dq' if dq else ''}"
        desc = f"bitsandbytes 4-bit {kind}, blocks of 64, {'double-quantized' if dq else 'fp32'} absmax"
    elif eight:
        name, desc = "bnb-int8", "bitsandbytes LLM.int8, fp32 scale per row"
    else:
        raise UnsupportedQuantizationError("bitsandbytes config with neither load_in_4bit nor load_in_8bit")
    name = _fmt_check(name + suffix)
    known = {"load_in_4bit", "_load_in_4bit", "load_in_8bit", "_load_in_8bit", "bnb_4bit_quant_type",
             "bnb_4bit_use_double_quant", "llm_int8_skip_modules", "bnb_4bit_compute_dtype", "bnb_4bit_quant_storage",
             "llm_int8_threshold", "llm_int8_has_fp16_weight", "llm_int8_enable_fp32_cpu_offload"}
    return QuantizationInfo(method, name, desc, tuple(notes), tuple(skip), _unknown(q, known))


def _block(value) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, str):
        parts = re.findall(r"\d+", value)
        return (int(parts[0]), int(parts[1])) if len(parts) == 2 else None
    vals = [int(v) for v in value]
    return (vals[0], vals[1]) if len(vals) == 2 else None


def _q_fp8(method, q):
    block = _block(q.get("weight_block_size"))
    excluded = _as_list(q.get("modules_to_not_convert")) + _as_list(q.get("ignored_layers"))
    suffix, notes = _exclusions(excluded)
    if block is None:
        name, desc = "fp8-per-tensor", "FP8 e4m3, one scale per matrix"
    elif block == (128, 128):
        name, desc = "fp8-block128", "FP8 e4m3, fp32 scale per 128x128 block"
    else:
        raise UnsupportedQuantizationError(f"FP8 weight_block_size {list(block)}: only 128x128 blocks are sized")
    return QuantizationInfo(method, _fmt_check(name + suffix), desc, tuple(notes), tuple(excluded),
                            _unknown(q, {"weight_block_size", "activation_scheme", "fmt", "ignored_layers"}))


def _q_fbgemm(method, q):
    excluded = _as_list(q.get("modules_to_not_convert"))
    suffix, notes = _exclusions(excluded)
    return QuantizationInfo(method, _fmt_check("fp8-per-channel" + suffix), "FBGEMM FP8, fp32 scale per output row",
                            tuple(notes), tuple(excluded), _unknown(q, {"activation_scale_ub"}))


def _q_eetq(method, q):
    excluded = _as_list(q.get("modules_to_not_convert"))
    suffix, notes = _exclusions(excluded)
    return QuantizationInfo(method, _fmt_check("int8" + suffix), "EETQ int8 weight-only, scale per output row",
                            tuple(notes), tuple(excluded), _unknown(q, {"weights"}))


def _q_mxfp4(method, q):
    excluded = _as_list(q.get("modules_to_not_convert"))
    attn = any(any(w in n.lower() for w in _ATTN_WORDS) for n in excluded)
    name = "mxfp4" if attn else "mxfp4-all"
    desc = "MXFP4 (E2M1 + E8M0 scale per 32) on " + ("MoE experts only" if attn else "every linear layer")
    return QuantizationInfo(method, name, desc, (), tuple(excluded), _unknown(q, set()))


def _q_exl(method, q):
    if "bits" not in q:
        raise UnsupportedQuantizationError(f"{method} config without bits (average bits per weight)")
    bits = float(q["bits"])
    notes = []
    head = q.get("head_bits")
    if head is None:
        head = 6.0
        notes.append("head_bits not stated: 6 assumed (the ExLlama default)")
    name = _fmt_check(f"{method}-b{bits:g}-h{float(head):g}")
    notes.append("average bits per weight applied to every linear layer (per-layer bits of the measurement not read)")
    return QuantizationInfo(method, name, f"{method.upper()} {bits:g} bpw, head {float(head):g} bits", tuple(notes),
                            (), _unknown(q, {"bits", "head_bits", "calibration", "quant_method"}))


def _q_modelopt(method, q):
    algo = str(q.get("quant_algo") or "").upper()
    excluded = _as_list(q.get("exclude_modules")) + _as_list(q.get("modules_to_not_convert"))
    suffix, notes = _exclusions(excluded)
    kv = q.get("kv_cache_quant_algo")
    kv_dtype = "fp8" if kv and "FP8" in str(kv).upper() else None
    if kv_dtype:
        notes.append(f"kv_cache_quant_algo {kv}: the checkpoint ships KV scales (pass kv_cache_dtype=fp8 to use them)")
    table = {"FP8": ("fp8-per-tensor", "ModelOpt FP8, one scale per matrix"),
             "FP8_PER_CHANNEL_PER_TOKEN": ("fp8-per-channel", "ModelOpt FP8, scale per output row"),
             "NVFP4": ("nvfp4", "ModelOpt NVFP4 (E2M1 + fp8 scale per 16 + fp32 global scale)"),
             "FP8_PB_WO": ("fp8-block128", "ModelOpt FP8 block-wise weights")}
    if algo in ("W4A16_AWQ", "W4A8_AWQ", "INT4_AWQ"):
        group = int(q.get("group_size") or q.get("awq_block_size") or 128)
        name, desc = f"awq-int4-g{group}", f"ModelOpt {algo}, group {group}"
        notes.append("ModelOpt INT4-AWQ stores scales without zero points: sized as AWQ (+0.03 bits)")
    elif algo in table:
        name, desc = table[algo]
    else:
        raise UnsupportedQuantizationError(
            f"ModelOpt quant_algo {algo or '(none)'!r} is not sized (MIXED_PRECISION sets formats per layer); pass "
            "the weight format explicitly or give the safetensors metadata")
    return QuantizationInfo(method, _fmt_check(name + suffix), desc, tuple(notes), tuple(excluded),
                            _unknown(q, {"quant_algo", "exclude_modules", "kv_cache_quant_algo", "group_size",
                                         "awq_block_size", "has_zero_point", "pre_quant_scale"}), kv_dtype)


def _targets_scope(targets: list[str]) -> str:
    low = [t.lower() for t in targets]
    if not low or any(t in ("linear", "re:.*") for t in low):
        return ""
    if all("expert" in t for t in low):
        return "@experts"
    if all("mlp" in t or "expert" in t for t in low):
        return "@mlp"
    return ""


def _q_compressed(method, q):
    groups = q.get("config_groups") or {}
    fmt_top = str(q.get("format") or "")
    schemes = []
    for g in groups.values():
        w = dict(g.get("weights") or {})
        if not w:
            continue
        key = (int(w.get("num_bits", 8)), str(w.get("type", "int")).lower(), str(w.get("strategy", "tensor")).lower(),
               w.get("group_size"), _block(w.get("block_structure")), bool(w.get("symmetric", True)),
               str(w.get("actorder") or "").lower() or None, str(g.get("format") or fmt_top))
        schemes.append((key, _as_list(g.get("targets"))))
    if not schemes:
        raise UnsupportedQuantizationError("compressed-tensors config without weight schemes in config_groups")
    if len({k for k, _ in schemes}) > 1:
        raise UnsupportedQuantizationError(
            "compressed-tensors config with several weight schemes (mixed precision): not sized; "
            "give the safetensors metadata")
    (bits, kind, strategy, group, block, sym, actorder, fmt), targets = schemes[0]
    notes: list[str] = []
    sparsity = q.get("sparsity_config") or {}
    if sparsity and str(sparsity.get("format", "dense")).lower() != "dense":
        raise UnsupportedQuantizationError(f"compressed-tensors sparsity format {sparsity.get('format')!r}: not sized")
    if kind == "float" and bits == 8:
        name = {"tensor": "fp8-per-tensor", "channel": "fp8-per-channel"}.get(strategy)
        if strategy == "block":
            if block != (128, 128):
                raise UnsupportedQuantizationError(f"compressed-tensors FP8 block {block}: only 128x128 is sized")
            name = "fp8-block128"
        desc = f"compressed-tensors FP8 ({strategy})"
    elif kind == "float" and bits == 4:
        if strategy in ("tensor_group", "group") and int(group or 16) == 16:
            name, desc = "nvfp4", "compressed-tensors NVFP4 (fp8 scale per 16 + global scale)"
        elif int(group or 0) == 32:
            name, desc = "mxfp4-all", "compressed-tensors MXFP4 (E8M0 scale per 32)"
        else:
            name, desc = None, ""
    elif kind == "int" and bits in (4, 8):
        if bits == 8 and strategy in ("channel", "tensor") and "pack" not in fmt:
            name, desc = "int8", f"compressed-tensors int8 ({strategy}), scale per output row"
            if strategy == "tensor":
                notes.append("int8 with one scale per matrix: sized with a scale per row (+4 bytes per row)")
        elif strategy == "group":
            name = f"w{bits}a16-g{int(group or 128)}" + ("" if sym else "-asym") + \
                   ("-actorder" if actorder in ("group", "weight", "true") else "")
            desc = f"compressed-tensors int{bits}, group {int(group or 128)}"
        elif strategy == "channel":
            name = f"w{bits}a16-channel" + ("" if sym else "-asym")
            desc = f"compressed-tensors int{bits}, per channel"
        else:
            name, desc = None, ""
    else:
        name, desc = None, ""
    if name is None:
        raise UnsupportedQuantizationError(
            f"compressed-tensors weights num_bits={bits} type={kind} strategy={strategy} group_size={group}: not sized")
    ignore = _as_list(q.get("ignore"))
    suffix, more = _exclusions(ignore)
    suffix = suffix or _targets_scope(targets)
    kv = q.get("kv_cache_scheme")
    kv_dtype = None
    if isinstance(kv, Mapping) and kv.get("num_bits") == 8 and str(kv.get("type", "")).lower() == "float":
        kv_dtype = "fp8"
        notes.append("kv_cache_scheme fp8: the checkpoint ships KV scales (pass kv_cache_dtype=fp8 to use them)")
    known = {"config_groups", "ignore", "kv_cache_scheme", "quantization_status", "sparsity_config",
             "global_compression_ratio", "transform_config", "quant_method", "format", "version"}
    return QuantizationInfo(method, _fmt_check(name + suffix), desc, tuple(notes + more), tuple(ignore),
                            _unknown(q, known), kv_dtype)


def _q_mlx(method, q):
    bits = int(q.get("bits", 4))
    group = int(q.get("group_size", 64))
    mode = str(q.get("mode") or "affine").lower()
    if mode != "affine":
        raise UnsupportedQuantizationError(f"MLX quantization mode {mode!r}: only affine (scale + bias) is sized")
    overrides = sorted(k for k, v in q.items() if isinstance(v, Mapping))
    notes = []
    if overrides:
        notes.append(f"{len(overrides)} modules have their own bits / group size (e.g. {overrides[0]}): not modelled")
    notes.append("routers (MoE gates) are counted unquantized; mlx-lm quantizes them too")
    return QuantizationInfo("mlx", _fmt_check(f"mlx-b{bits}-g{group}"),
                            f"MLX {bits}-bit affine, group {group} (embeddings and LM head included)", tuple(notes),
                            (), ())


def _q_torchao(method, q):
    qt = q.get("quant_type")
    if isinstance(qt, Mapping) and isinstance(qt.get("default"), Mapping):
        qt = qt["default"]
    kind = str(qt.get("_type") if isinstance(qt, Mapping) else qt or "")
    data = qt.get("_data", {}) if isinstance(qt, Mapping) else dict(q.get("quant_type_kwargs") or {})
    low = kind.lower()
    if "int4weightonly" in low.replace("_", ""):
        group = int(data.get("group_size", 128))
        name, desc = f"int4wo-g{group}", f"torchao int4 weight-only, group {group}"
    elif "int8weightonly" in low.replace("_", "") or "int8dynamicactivationint8weight" in low.replace("_", ""):
        name, desc = "int8", "torchao int8, scale per output row"
    elif "float8" in low:
        name, desc = "fp8-per-channel", "torchao float8, scale per output row"
    else:
        raise UnsupportedQuantizationError(f"torchao quant_type {kind or qt!r}: not sized")
    return QuantizationInfo(method, name, desc, (), _as_list(q.get("modules_to_not_convert")),
                            _unknown(q, {"quant_type", "quant_type_kwargs", "include_input_output_embeddings",
                                         "untie_embedding_weights"}))


_QUANT_HANDLERS = {
    "awq": _q_awq, "gptq": _q_gptq, "auto-round": _q_autoround, "intel/auto-round": _q_autoround,
    "autoround": _q_autoround, "auto_round": _q_autoround, "bitsandbytes": _q_bnb, "fp8": _q_fp8,
    "fbgemm_fp8": _q_fbgemm, "eetq": _q_eetq, "mxfp4": _q_mxfp4, "exl2": _q_exl, "exl3": _q_exl,
    "modelopt": _q_modelopt, "compressed-tensors": _q_compressed, "compressed_tensors": _q_compressed,
    "torchao": _q_torchao, "mlx": _q_mlx,
}


def checkpoint_weight_bytes(arch, *, dtype: str = "bfloat16", quantization: str | None = None,
                            include_mtp: bool = False) -> float:
    """Bytes of every weight tensor of ``arch`` as a checkpoint stores them (one copy, no TP).

    Unlike :func:`fitting.physics.memory.weight_bytes_per_gpu` there is no vocabulary padding
    and no parallel split: this is the figure a safetensors index's ``metadata.total_size``
    (or the sum over its headers) states, for the tensors the physics models.

    Parameters
    ----------
    arch : Architecture
    dtype : str, default "bfloat16"
        Storage dtype of unquantized tensors (the checkpoint's ``torch_dtype``).
    quantization : str or None
        A :func:`weight_format` name (GGUF types are not safetensors checkpoints and raise).
    include_mtp : bool, default False
        Count multi-token-prediction layers (DeepSeek-V3 ships them in the checkpoint).

    Returns
    -------
    float
        Bytes.
    """
    fmt = weight_format(quantization)
    if isinstance(fmt, GGUFFormat):
        raise ValueError("checkpoint_weight_bytes sizes safetensors checkpoints; GGUF files are sized per tensor type")
    unq = dtype_bytes(normalize_dtype(dtype) or "bfloat16")
    total = 0.0
    for spec in tensor_inventory(arch, include_mtp=include_mtp):
        n = len(spec.layers) if spec.layers is not None else 1
        if fmt is not None and spec.is_matrix and fmt.applies_to(spec):
            b = float(fmt.matrix_bytes(spec.rows, spec.cols, role=spec.role)) * spec.copies
        else:
            b = float(spec.rows * spec.cols * spec.copies * unq)
        total += b * n
    return total
