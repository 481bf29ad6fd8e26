"""GPU memory table: a GPU name -> its nominal and usable memory (GiB), with sources.

Units. Vendors label GPU memory in "GB", but the number is the binary capacity of the
memory chips, i.e. GiB (2**30 bytes): a "80GB" H100 exposes 79.19-79.22 GiB to CUDA, more
than 80e9 bytes = 74.5 GiB could hold; likewise A100 40GB (39.5 GiB usable > 37.25), H200
141GB (139.8 > 131.3) and RTX 4090 24GB (23.99 > 22.35). So ``nominal_gib`` is the datasheet
number read as GiB. ``usable_gib`` is what the driver reports as the device total
(``cudaMemGetInfo``/``torch.cuda.mem_get_info()[1]``), which is what vLLM prints as
``total_gpu_memory`` and multiplies by ``gpu_memory_utilization``; it is lower than nominal
by driver/firmware reservations and, on GDDR data-centre cards with ECC on (A10, A10G, L4,
L40, L40S), by the 1/16 of memory in-band ECC takes. nvidia-smi's "Total" is a third, larger
figure (H100: 81559 MiB = 79.65 GiB) and is not used here.

Every usable figure names where it was seen: a framework log in the project's public
measurements (``shared/data/public-logs``: URL or file reference), or ``estimate: ...`` when
no log for that GPU was available (then the estimator says so in its warnings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class GPUInfo:
    """Memory of one GPU model.

    Attributes
    ----------
    name : str
        Canonical name, e.g. ``"H100-80GB"``.
    vendor : str
    nominal_gib : float
        Datasheet memory ("80GB"), a binary capacity, in GiB.
    usable_gib : float
        Device total as reported by the driver (CUDA/ROCm), GiB.
    usable_source : str
        Where ``usable_gib`` was seen, or ``"estimate: ..."``.
    aliases : tuple of str
    """

    name: str
    vendor: str
    nominal_gib: float
    usable_gib: float
    usable_source: str
    aliases: tuple = ()

    @property
    def usable_is_estimate(self) -> bool:
        """True when no log showed this GPU's usable memory."""
        return self.usable_source.startswith("estimate")


def _est(nominal, why="99% of nominal, the ratio seen on H100/A100/H200 (79.19/80, 39.5/40, 139.8/141)"):
    return round(0.99 * nominal, 2), f"estimate: {why}"


_PL = "shared/data/public-logs"
_GDDR_ECC = "estimate: same 24 GiB GDDR6 with ECC as the A10, whose vLLM log shows 22.06 GiB (" + _PL + \
    "/vllm.jsonl, file ref 60663571995)"

_TABLE = (
    # NVIDIA data centre
    GPUInfo("A10", "NVIDIA", 24, 22.06, f"vLLM log total_gpu_memory (22.06GiB), {_PL}/vllm.jsonl file ref 60663571995",
            ("a10-24gb",)),
    GPUInfo("A10G", "NVIDIA", 24, 22.06, "the A10's device total: the A10G (AWS's A10) and the A10 show the same "
            "nvidia-smi total, 23028 MiB (A10G: public GitHub file refs 22190908935, 21021056340; A10: 46225780489, "
            f"36216951582), and an A10's vLLM log prints total_gpu_memory 22.06 GiB ({_PL}/vllm.jsonl, file ref "
            "60663571995)", ("a10g-24gb",)),
    GPUInfo("L4", "NVIDIA", 24, 22.06, _GDDR_ECC, ("l4-24gb",)),
    GPUInfo("A30", "NVIDIA", 24, 23.5, "torch's 'a total capacity of 23.50 GiB' in an OOM on NVIDIA A30 "
            "(collect_env), https://github.com/vllm-project/vllm/issues/29070", ("a30-24gb",)),
    GPUInfo("L40", "NVIDIA", 48, 44.39, f"vLLM log total_gpu_memory (44.39GiB), {_PL}/vllm.jsonl file ref 60430572081",
            ("l40-48gb",)),
    GPUInfo("L40S", "NVIDIA", 48, 44.39, "vLLM logs 'Free memory on device (43.97/44.39 GiB)' on 8x L40S, "
            "https://github.com/gnosia93/vlm-distillation/blob/30967bf4a93dba3c639a90452d2c0da35e9372b3/ec2/"
            "5-vlm-infer.md, and the gemma-4-26B L40S starts of akamaslabs/vllm-benchmark (profiles/public/vllm/logs/"
            "h6-*); 44.42 GiB in file ref 38962983769 - the smaller is used", ("l40s-48gb",)),
    GPUInfo("T4", "NVIDIA", 16, 14.74, "vLLM log total_gpu_memory (14.74GiB) of a 'Turing-class 16 GB GPU' "
            f"(ECC on), {_PL}/vllm.jsonl file ref 7884883735", ("t4-16gb", "tesla-t4")),
    GPUInfo("V100-16GB", "NVIDIA", 16, *_est(16), ("v100", "v100-16", "v100-sxm2-16gb")),
    GPUInfo("V100-32GB", "NVIDIA", 32, *_est(32), ("v100-32", "v100-sxm2-32gb")),
    GPUInfo("A100-40GB", "NVIDIA", 40, 39.5, "vLLM log total_gpu_memory (39.50GiB), "
            "https://github.com/vllm-project/vllm/issues/12330", ("a100-40", "a100-sxm4-40gb", "a100-pcie-40gb")),
    GPUInfo("A100-80GB", "NVIDIA", 80, 79.15, "vLLM log total_gpu_memory (79.15GiB), "
            "https://github.com/vllm-project/vllm/pull/10909 and file ref 6934259882 (A100-SXM4-80GB)",
            ("a100-80", "a100-sxm4-80gb", "a100-pcie-80gb")),
    GPUInfo("H100-80GB", "NVIDIA", 80, 79.19, "vLLM logs (29 records, 79.19 GiB; 79.22 GiB in "
            "https://github.com/vllm-project/vllm/pull/10511 and /pull/12126 - the smaller is used), e.g. "
            "https://github.com/llm-d-incubation/llm-d-planner/blob/main/docs/accuracy/vllm-v0.19.0-accuracy-report.md",
            ("h100", "h100-80", "h100-sxm", "h100-sxm5-80gb", "h100-pcie", "h100-80gb-hbm3")),
    GPUInfo("H100-NVL", "NVIDIA", 94, *_est(94), ("h100-94gb", "h100nvl")),
    GPUInfo("H20", "NVIDIA", 96, *_est(96), ("h20-96gb",)),
    GPUInfo("H200", "NVIDIA", 141, 139.8, "vLLM log total_gpu_memory=139.80GiB (file ref 54021851790) and "
            f"139.81 GiB (file ref 7292846353), {_PL}/vllm.jsonl", ("h200-141gb", "h200-sxm")),
    GPUInfo("B200", "NVIDIA", 180, *_est(180, "99% of nominal (HGX/DGX B200: 180 GB per GPU); no log seen"),
            ("b200-180gb",)),
    GPUInfo("B300", "NVIDIA", 288, 267.69, "vLLM log of a B300-class (sm103a) GPU, "
            f"{_PL}/vllm.jsonl file ref 63390294774", ("b300-288gb",)),
    GPUInfo("GB300", "NVIDIA", 288, 276.62, f"vLLM blog table of GB300 runs, {_PL}/vllm.jsonl file ref 69453294364", ()),
    # NVIDIA workstation / consumer
    GPUInfo("RTX-4090", "NVIDIA", 24, 23.99, "total 24564 MiB = 23.99 GiB: SGLang log (file ref 55529353766), "
            "nvidia-smi in https://github.com/vllm-project/vllm/issues/7553", ("4090", "geforce-rtx-4090")),
    GPUInfo("RTX-3090", "NVIDIA", 24, 23.58, "vLLM log total_gpu_memory=23.58GiB, "
            "https://github.com/vllm-project/vllm/issues/10517", ("3090", "geforce-rtx-3090")),
    GPUInfo("RTX-4080", "NVIDIA", 16, 15.56, "vLLM log total_gpu_memory=15.56GiB, "
            "https://github.com/vllm-project/vllm/issues/10797", ("4080", "geforce-rtx-4080")),
    GPUInfo("RTX-5090", "NVIDIA", 32, 31.84, "TensorRT-LLM log 'total: 31.84 GiB', "
            "https://github.com/NVIDIA/TensorRT-LLM/issues/4275", ("5090", "geforce-rtx-5090")),
    GPUInfo("RTX-A6000", "NVIDIA", 48, *_est(48), ("a6000", "rtx-a6000-48gb")),
    GPUInfo("RTX-6000-ADA", "NVIDIA", 48, 47.37, "vLLM log of an SM89 48 GB GPU (model not named), "
            "https://github.com/vllm-project/vllm/pull/57047", ("rtx-6000-ada-generation",)),
    GPUInfo("RTX-PRO-6000", "NVIDIA", 96, 95.59, "97887 MiB reported for an RTX PRO 6000 Blackwell Server Edition, "
            f"{_PL}/vllm.jsonl file ref 60003871836", ("rtx-pro-6000-blackwell", "rtx-pro-6000-blackwell-server-edition")),
    # AMD
    GPUInfo("MI210", "AMD", 64, *_est(64), ("mi210-64gb",)),
    GPUInfo("MI250X", "AMD", 128, *_est(128, "99% of nominal, whole card (2 GCDs of 64 GiB each)"), ("mi250x-128gb",)),
    GPUInfo("MI300X", "AMD", 192, *_est(192), ("mi300x-192gb",)),
    GPUInfo("MI325X", "AMD", 256, *_est(256), ("mi325x-256gb",)),
    GPUInfo("MI355X", "AMD", 288, *_est(288), ("mi355x-288gb",)),
)


def _key(name: str) -> str:
    s = name.lower().strip()
    s = re.sub(r"^(nvidia|amd|instinct)[\s_-]+", "", s)
    s = re.sub(r"^(geforce|instinct|tesla)[\s_-]+", "", s)
    s = re.sub(r"[^a-z0-9]+", "", s)
    return s


GPUS = {g.name: g for g in _TABLE}
_LOOKUP = {}
for _g in _TABLE:
    for _n in (_g.name, *_g.aliases):
        _LOOKUP[_key(_n)] = _g
        if _key(_n).endswith("gb"):  # "a100-80gb" also answers to "a100-80"
            _LOOKUP.setdefault(_key(_n)[:-2], _g)


def gpu_info(name: str) -> GPUInfo:
    """Look up a GPU by name (case, spaces, dashes and a vendor prefix are ignored).

    Parameters
    ----------
    name : str
        E.g. ``"H100"``, ``"nvidia a100 80gb"``, ``"L40S"``, ``"MI300X"``.

    Returns
    -------
    GPUInfo

    Raises
    ------
    ValueError
        Unknown or ambiguous name (``"A100"``: say 40GB or 80GB); the message lists the table.

    Examples
    --------
    >>> gpu_info("h100").usable_gib
    79.19
    """
    k = _key(name)
    if k in _LOOKUP:
        return _LOOKUP[k]
    candidates = sorted({g.name for kk, g in _LOOKUP.items() if kk.startswith(k)}) if k else []
    if len(candidates) > 1:
        raise ValueError(f"GPU name {name!r} is ambiguous: one of {', '.join(candidates)}; "
                         "or give --gpu-memory-gib")
    raise ValueError(f"unknown GPU {name!r}; known: {', '.join(GPUS)}; or give --gpu-memory-gib")


#: GPU-table names whose multi-GPU servers have no NVLink between the cards (PCIe boards:
#: data-centre inference cards, workstation and consumer cards).
_PCIE_GPUS = frozenset({"A10", "A10G", "A30", "L4", "L40", "L40S", "T4", "RTX-4090", "RTX-3090", "RTX-4080", "RTX-5090",
                        "RTX-A6000", "RTX-6000-ADA", "RTX-PRO-6000"})
_PCIE_WORDS = re.compile(r"pcie|geforce|\brtx\b|quadro|titan|\bl4\b|\bl40s?\b|\ba10g?\b|\bt4\b|\ba[34]0\b", re.I)
_NVLINK_WORDS = re.compile(r"sxm|hbm3|\bnvl\b|hgx|dgx|\bh200\b|\bb200\b|\bb300\b|\bgb200\b|\bgb300\b", re.I)


_COUNT_SUFFIX = re.compile(r"\s*\(\s*x\s*\d{1,2}\s*\)\s*$", re.I)
_MEMORY_NOTE = re.compile(r"\s*\(\s*(\d{1,3})\s*GB\s*\)\s*$", re.I)


def find_gpu(name: str | None) -> GPUInfo | None:
    """:func:`gpu_info`, or None for a name the table does not know (or an ambiguous one)."""
    if not name:
        return None
    # a board count written after the name ("NVIDIA H100 (x4)", "4x A100 80GB" stays unknown)
    name = _COUNT_SUFFIX.sub("", str(name))
    # a memory size in parentheses ("RTX 4090 (24 GB)", "A100 (40GB)") is part of the name
    candidates = [name, _MEMORY_NOTE.sub(lambda m: f" {m.group(1)}GB", name)]
    for candidate in dict.fromkeys(candidates):
        try:
            return gpu_info(candidate)
        except (ValueError, KeyError, LookupError):
            continue
    stripped = _MEMORY_NOTE.sub("", name)
    try:  # the size did not name a table entry: the name alone, if that is unambiguous
        return gpu_info(stripped) if stripped != name else None
    except (ValueError, KeyError, LookupError):
        return None


def gpu_interconnect(name: str | None) -> str | None:
    """``"pcie"`` for boards that are connected over PCIe in multi-GPU servers, ``"nvlink"``
    for SXM/HGX parts (and H100-80GB, A100, V100, whose usual server form is SXM), None for
    unknown names and AMD GPUs.

    >>> gpu_interconnect("L40S"), gpu_interconnect("NVIDIA H100 80GB HBM3"), gpu_interconnect("MI300X")
    ('pcie', 'nvlink', None)
    """
    if not name:
        return None
    text = str(name)
    if _NVLINK_WORDS.search(text) and "pcie" not in text.lower():
        return "nvlink"
    if _PCIE_WORDS.search(text):
        return "pcie"
    info = find_gpu(text)
    if info is None:
        return None
    if info.name in _PCIE_GPUS:
        return "pcie"
    return "nvlink" if info.vendor == "NVIDIA" else None
