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

__all__ = ["transformers_settings_from_record", "transformers_settings_from_profile", "TRANSFORMERS_AT_TORCH_RELEASE"]

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


#: PyTorch minor release -> the transformers release current when it came out (both
#: release dates from PyPI): the version a benchmark that states only its PyTorch most
#: likely ran. torch 2.0 (2023-03-15): 4.27 (2023-03-15); 2.1 (2023-10-04): 4.34
#: (2023-10-03); 2.2 (2024-01-30): 4.37 (2024-01-22); 2.3 (2024-04-24): 4.40 (2024-04-18);
#: 2.4 (2024-07-24): 4.43 (2024-07-23); 2.5 (2024-10-17): 4.45 (2024-09-25); 2.6
#: (2025-01-29): 4.48 (2025-01-10); 2.7 (2025-04-23): 4.51 (2025-04-05).
TRANSFORMERS_AT_TORCH_RELEASE = {
    (2, 0): "4.27.0", (2, 1): "4.34.0", (2, 2): "4.37.0", (2, 3): "4.40.0",
    (2, 4): "4.43.0", (2, 5): "4.45.0", (2, 6): "4.48.0", (2, 7): "4.51.0",
}
_TORCH = re.compile(r"(?:PyTorch|torch)\s+v?(\d+)\.(\d+)", re.IGNORECASE)


def transformers_settings_from_profile(row: Mapping) -> dict:
    """Mechanism settings of one transformers profile (a row of ``ProfileSet.to_frame()``).

    The profile's own fields are read as a public-log record would be
    (:func:`transformers_settings_from_record`): ``framework_version``, ``series``,
    ``attention_impl``, ``quantization``, ``measurement_notes``, ``provenance_notes``. The
    workload's ``phase`` (``prefill`` / ``generate``) decides the mode where the text does not.

    A version the profile does not state is inferred from the PyTorch version it states
    (:data:`TRANSFORMERS_AT_TORCH_RELEASE`), and ``version_source`` says so; with neither it
    stays None (the caller decides, and says what it assumed).

    Returns
    -------
    dict
        ``version``, ``version_source`` (``stated``, ``inferred from PyTorch X.Y`` or None),
        ``mode``, ``attn_implementation``, ``quantization`` (kernel), ``measured``,
        ``peak_includes_load`` (profile flag: the figure is the larger of the load's and the run's peak).
    """
    def get(key):
        v = row.get(key)
        return None if v is None or (isinstance(v, float) and v != v) else v

    record = {"framework_version": get("framework_version"), "series": get("series"),
              "measure": get("measurement_notes"), "attention_impl": get("attention_impl"),
              "dtype_or_quant": get("quantization"), "notes": get("provenance_notes")}
    out = transformers_settings_from_record(record)
    out["version_source"] = "stated" if out["version"] else None
    if out["version"] is None:
        m = _TORCH.search(str(get("framework_version") or ""))
        if m and (int(m.group(1)), int(m.group(2))) in TRANSFORMERS_AT_TORCH_RELEASE:
            out["version"] = TRANSFORMERS_AT_TORCH_RELEASE[(int(m.group(1)), int(m.group(2)))]
            out["version_source"] = f"inferred from PyTorch {m.group(1)}.{m.group(2)}"
    # a peak counter never reset after from_pretrained (flag set by the converter from the script)
    out["peak_includes_load"] = "peak_includes_load" in tuple(get("flags") or ())
    phase = str(get("phase") or "").lower()
    if out["mode"] is None and phase:
        out["mode"] = "forward" if phase == "prefill" else "generate" if phase in ("generate", "decode") else None
    return out
