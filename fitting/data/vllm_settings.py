"""vLLM settings that decide memory mechanisms, read from a public-log record's printed text.

:func:`vllm_settings_from_record` takes one raw record of ``shared/data/public-logs/vllm.jsonl``
(a dict) and returns the settings the vLLM physics (:mod:`fitting.physics.vllm`) needs but
the profile schema has no field for yet: whether FlashInfer's sampler ran, whether custom
all-reduce was on, the interconnect, the entry point, whether the image shipped FlashInfer,
CPU offload and speculative decoding. Each value is ``None`` unless the record's
``evidence`` or ``notes`` say it; the patterns are vLLM's own log lines (quoted with their
source file) or the dataset's reviewed wording. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["vllm_settings_from_record"]

#: ``vllm/v1/sample/ops/topk_topp_sampler.py`` (0.8.0-0.33.0) log lines.
_FI_ON = re.compile(r"Using FlashInfer for top-p (?:&|and) top-k sampling", re.IGNORECASE)
_FI_OFF = re.compile(
    r"FlashInfer is available, but it is not enabled|FlashInfer is not available\. Falling back|"
    r"FlashInfer top-p/top-k sampling is available but disabled|FlashInfer sampler disabled|"
    r"VLLM_USE_FLASHINFER_SAMPLER=0", re.IGNORECASE)
#: ``vllm/distributed/device_communicators/custom_all_reduce.py`` warnings and the flag.
_CAR_OFF = re.compile(
    r"custom all-?reduce (?:is )?(?:auto-)?disabled|disable[_-]custom[_-]all[_-]reduce(?:=True|\b)", re.IGNORECASE)
_NO_P2P = re.compile(r"lacks GPU P2P capability|P2P test failed|P2P (?:off|disabled|unavailable)", re.IGNORECASE)
_PCIE = re.compile(r"PCIe-only|\bPCIe\b|not supported on more than two PCIe", re.IGNORECASE)
_MULTI_NODE = re.compile(r"spans nodes|different nodes|multi-node|\b\d+-node\b|\bnodes\b.*Ray", re.IGNORECASE)
_NVLINK = re.compile(r"\bNVLink\b|\bSXM\d?\b|\bNVL\d*\b", re.IGNORECASE)
_SERVE = re.compile(r"\bvllm serve\b|api_server|vllm/vllm-openai|OpenAI-compatible", re.IGNORECASE)
_LLM_CLASS = re.compile(r"\bLLM\(|\bfrom vllm import LLM\b|offline inference", re.IGNORECASE)
_DOCKER = re.compile(r"vllm/vllm-openai:(v?[\w.]+)", re.IGNORECASE)
_OFFLOAD = re.compile(r"cpu[_-]offload[_-]gb\s*[=:]?\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_SPEC = re.compile(r"speculative|\bEAGLE-?\d?\b|\bMTP\b|draft model|ngram", re.IGNORECASE)
#: V1's multimodal profile line (``v1/worker/gpu_model_runner.py::profile_run``, 0.10.2;
#: ``v1/worker/gpu/mm/encoder_runner.py``, 0.34.0) and the dataset's reviewed wording of it.
_ENCODER_BUDGET = (
    re.compile(r"Encoder cache will be initialized with a budget of (\d+) tokens,? and profiled with (\d+) (\w+) "
               r"items", re.IGNORECASE),
    re.compile(r"Encoder cache budget (\d+) tokens,? (\d+) (\w+) items profiled", re.IGNORECASE),
)


def vllm_settings_from_record(record: Mapping) -> dict:
    """Settings stated in a raw ``vllm.jsonl`` record, for optional profile fields.

    Parameters
    ----------
    record : Mapping
        One raw public-log record (``evidence``, ``notes``, ``gpu_name`` are read).

    Returns
    -------
    dict
        ``sampler_flashinfer`` (bool or None): FlashInfer's top-k/top-p sampler ran (its
        "Using FlashInfer for top-p & top-k sampling" line) or was off; ``docker_image``
        (str or None): a ``vllm/vllm-openai`` tag (the image ships FlashInfer, which V1
        0.9-0.11 use by default); ``custom_all_reduce`` (False when a disabling warning or
        the flag is quoted, else None); ``p2p`` (False when the P2P check failed);
        ``interconnect`` (``"pcie"``, ``"nvlink"`` or None); ``same_node`` (False for
        multi-node runs); ``entry_point`` (``"serve"``, ``"llm"`` or None);
        ``cpu_offload_gb`` (float or None); ``speculative`` (True or None);
        ``encoder_budget_tokens``, ``encoder_items_profiled`` (int or None) and
        ``encoder_modality`` (str or None): V1's multimodal profile line.

    Examples
    --------
    >>> vllm_settings_from_record({"notes": "2x 3090 (PCIe x4x4, P2P on), custom all-reduce disabled"})["interconnect"]
    'pcie'
    """
    text = " | ".join(str(record.get(k) or "") for k in ("evidence", "notes"))
    gpu = str(record.get("gpu_name") or "")
    out: dict = {}
    out["sampler_flashinfer"] = True if _FI_ON.search(text) else (False if _FI_OFF.search(text) else None)
    m = _DOCKER.search(text)
    out["docker_image"] = m.group(0) if m else None
    out["custom_all_reduce"] = False if _CAR_OFF.search(text) else None
    out["p2p"] = False if _NO_P2P.search(text) else None
    if _PCIE.search(text) or _PCIE.search(gpu):
        out["interconnect"] = "pcie"
    elif _NVLINK.search(text) or _NVLINK.search(gpu):
        out["interconnect"] = "nvlink"
    else:
        out["interconnect"] = None
    out["same_node"] = False if _MULTI_NODE.search(text) else None
    out["entry_point"] = "serve" if _SERVE.search(text) else ("llm" if _LLM_CLASS.search(text) else None)
    m = _OFFLOAD.search(text)
    out["cpu_offload_gb"] = float(m.group(1)) if m else None
    out["speculative"] = True if _SPEC.search(text) else None
    budgets = {m.groups() for rx in _ENCODER_BUDGET for m in rx.finditer(text)}
    # two different budgets in one record's text: keep neither
    budget, items, modality = budgets.pop() if len(budgets) == 1 else (None, None, None)
    out["encoder_budget_tokens"] = int(budget) if budget else None
    out["encoder_items_profiled"] = int(items) if items else None
    out["encoder_modality"] = modality
    return out
