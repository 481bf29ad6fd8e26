"""transformers settings that decide memory mechanisms, read from a public-log record's text.

:func:`transformers_settings_from_record` takes one raw record of
``shared/data/public-logs/sweeps.jsonl`` or ``other_frameworks.jsonl`` (a dict) and returns
what :func:`fitting.physics.transformers.transformers_peak_bytes` needs beyond the profile
schema: the transformers version, whether the figure is a ``generate`` or a forward
(prefill) measurement, the attention implementation, the quantized kernel and what was
measured (torch allocated, reserved, or NVML used). Each value is ``None`` unless the
record says it. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from fitting.physics.transformers import parse_version

__all__ = ["transformers_settings_from_record"]

_VERSION = re.compile(r"transformers\s+v?(\d+\.\d+(?:\.\d+)?(?:\.dev\d+)?)", re.IGNORECASE)
_FORWARD = re.compile(r"_fwd_|_prefill_|\bforward\.|\bprefill\b|single prefill forward", re.IGNORECASE)
_GENERATE = re.compile(r"_gen_|_generate_|\bgenerate\.|generate\(\)", re.IGNORECASE)
_FA2 = re.compile(r"\bfa2\b|flash[_ ]attention[_ ]?2|use_flash_attention_2|\bflash\b", re.IGNORECASE)
_SDPA = re.compile(r"\bsdpa\b|bettertransformer|\+bt\b|scaled_dot_product", re.IGNORECASE)
_EAGER = re.compile(r"\beager\b", re.IGNORECASE)
_KERNELS = (
    ("gptq-exllamav2", re.compile(r"exllama\s*v2|exllamav2", re.IGNORECASE)),
    ("gptq-cuda-old", re.compile(r"cuda[-_]old", re.IGNORECASE)),
    ("gptq-exllama", re.compile(r"exllama(?:\s*v1|v1)?\b", re.IGNORECASE)),
    ("awq-gemv", re.compile(r"\bawq\b.*\bgemv\b", re.IGNORECASE)),
    ("awq-gemm", re.compile(r"\bawq\b", re.IGNORECASE)),
    ("bnb-8bit", re.compile(r"load_in_8bit|int8 bnb|bnb[_ ]8bit|llm\.int8|8-?bit", re.IGNORECASE)),
    ("bnb-4bit", re.compile(r"load_in_4bit|4-?bit bnb|bnb[_ ]4bit|\bnf4\b|bitsandbytes 4-?bit|_bnb\b|\bbnb\b",
                            re.IGNORECASE)),
)
_ALLOC = re.compile(r"max_memory_allocated|_alloc\b|peak_allocated", re.IGNORECASE)
_RESV = re.compile(r"max_memory_reserved|_resv\b", re.IGNORECASE)
_NVML = re.compile(r"\bNVML\b|nvidia-smi|max_memory_used|_used\b|nvml-peak", re.IGNORECASE)


def transformers_settings_from_record(record: Mapping) -> dict:
    """Settings stated in a raw public-log record of a transformers run.

    Parameters
    ----------
    record : Mapping
        ``framework_version``, ``series``, ``measure``, ``attention_impl``,
        ``dtype_or_quant`` / ``model_quant``, ``batch_setting``, ``evidence``, ``notes`` are read.

    Returns
    -------
    dict
        ``version`` (``"4.35.2"`` or None), ``mode`` (``"generate"``, ``"forward"`` or None),
        ``attn_implementation`` (``"eager"``, ``"sdpa"``, ``"flash_attention_2"`` or None),
        ``quantization`` (a kernel name of :func:`~fitting.physics.transformers.dequant_buffer_bytes`,
        ``"gptq-cuda-old"``, ``"awq-gemv"``, ``"bnb-8bit"`` or None; ``"gptq"`` when the
        kernel is not named), ``measured`` (``"allocated"``,
        ``"reserved"``, ``"nvml_used"`` or None).

    Examples
    --------
    >>> s = transformers_settings_from_record({
    ...     "framework_version": "transformers 4.35.2; torch 2.1.1", "attention_impl": "sdpa (BetterTransformer)",
    ...     "series": "optimum-benchmark-dec2023_llama-7b_A100-80GB_fp16+bt_gen_alloc",
    ...     "measure": "optimum-benchmark generate.max_memory_allocated(MB)"})
    >>> s["version"], s["mode"], s["attn_implementation"], s["measured"]
    ('4.35.2', 'generate', 'sdpa', 'allocated')
    """
    def text(*keys):
        return " | ".join(str(record.get(k) or "") for k in keys)

    out: dict = {}
    m = _VERSION.search(text("framework_version", "framework", "notes"))
    version = None
    if m:
        parse_version(m.group(1))  # validates the form
        version = m.group(1)
    out["version"] = version
    series = text("series")
    mode_text = series + " | " + text("measure")
    if _FORWARD.search(series) or (not _GENERATE.search(series) and _FORWARD.search(mode_text)):
        out["mode"] = "forward"
    elif _GENERATE.search(mode_text) or re.search(r"\bgenerate\b", text("framework"), re.IGNORECASE):
        out["mode"] = "generate"
    else:
        out["mode"] = None
    # the record's own attention field first; the series name only when it has none
    attn_text = text("attention_impl", "batch_setting")
    if not attn_text.strip(" |"):
        attn_text = series
    if _SDPA.search(attn_text):           # "SDPA flash kernel" is SDPA with its flash backend
        out["attn_implementation"] = "sdpa"
    elif _FA2.search(attn_text):
        out["attn_implementation"] = "flash_attention_2"
    elif _EAGER.search(attn_text):
        out["attn_implementation"] = "eager"
    else:
        out["attn_implementation"] = None
    # the record's own precision fields first, the series name second (notes describe other runs too)
    quant_text = text("dtype_or_quant", "model_quant")
    if not quant_text.strip(" |"):
        quant_text = series
    out["quantization"] = next((name for name, rx in _KERNELS if rx.search(quant_text)), None)
    if out["quantization"] is None and re.search(r"\bgptq\b", quant_text, re.IGNORECASE):
        out["quantization"] = "gptq"
    measure = text("measure") + " | " + series + " | " + text("evidence")
    if _ALLOC.search(measure):
        out["measured"] = "allocated"
    elif _RESV.search(measure):
        out["measured"] = "reserved"
    elif _NVML.search(measure):
        out["measured"] = "nvml_used"
    else:
        out["measured"] = None
    return out
