"""Measurement models: what a published figure measured, written as an equation in the
quantity the fit models (for transformers: the peak allocated by PyTorch, GiB per GPU).

A transformers profile may state the peak through another window on the same run:

``allocated``
    ``torch.cuda.max_memory_allocated``: the fitted response itself,
    ``y = W + KV + A + overhead``.
``allocated_plus_non_torch``
    optimum's ``tests/benchmark/benchmark_gptq.py``: ``allocated_bytes.all.peak + (NVML
    device-used peak - reserved_bytes.all.peak)``, i.e. the allocated peak plus the memory
    outside PyTorch's allocator (CUDA context, cuBLAS and NCCL handles), with no allocator
    slack: ``y_total = y + C_gpu``.

The non-torch term ``C_gpu`` is a property of the GPU and the CUDA runtime, not of the
model, so it is estimated from the profiles that measured the same run twice: an NVML
device-used peak beside the reserved peak (optimum-benchmark Dec 2023 ``_used`` and
``_resv`` series) give ``C_i = used_i - reserved_i`` on the same GPU. The estimate is the
median of those differences (robust to the pairs whose two figures cannot come from one
moment of one process: 20 of the 101 A100 pairs show used < reserved, by up to 52 GiB) with the standard
error of a median, ``1.2533 * 1.4826 MAD / sqrt(n)``. A profile of the second kind then
enters the fit as ``y = y_total - C_gpu``; the standard error of ``C_gpu`` is recorded and
is small against the residual scale (A100-SXM4-80GB: 1.372 GiB, SE 0.0005 GiB, 101 pairs). A GPU without such pairs
has no estimate, and its profiles stay out with that reason.

Not modelled (profiles stay out with their reason): NVML-used or reserved peaks without an
allocated figure (the allocator's slack depends on the process's history: the paired
reserved-minus-allocated differences of one series range from 0.03 to 62 GiB), printed
units whose base the source leaves open, and running maxima across benchmark rounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["NonTorchEstimate", "estimate_non_torch", "ALLOCATED_PLUS_NON_TORCH"]

#: Profile flag of a total that is the allocated peak plus the non-torch memory.
ALLOCATED_PLUS_NON_TORCH = "allocated_plus_non_torch"

#: Standard error of a median relative to sd / sqrt(n) for normal data (sqrt(pi / 2)).
_MEDIAN_SE_FACTOR = math.sqrt(math.pi / 2.0)
#: MAD -> standard deviation for normal data.
_MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class NonTorchEstimate:
    """Memory outside PyTorch's allocator on one GPU model, from paired profiles (GiB).

    Attributes
    ----------
    gpu_name : str
    estimate_gib : float
        Median of ``used - reserved`` over the pairs.
    se_gib : float
        Standard error of the median.
    n : int
        Pairs used.
    n_negative : int
        Pairs with ``used < reserved`` (figures of different processes); they stay in the
        median, which they barely move, and are counted here.
    profile_ids : tuple of str
    """

    gpu_name: str
    estimate_gib: float
    se_gib: float
    n: int
    n_negative: int
    profile_ids: tuple = ()

    def to_json(self) -> dict:
        return {"model": "non_torch_from_pairs", "gpu_name": self.gpu_name, "estimate_gib": self.estimate_gib,
                "se_gib": self.se_gib, "n_pairs": self.n, "n_negative_pairs": self.n_negative,
                "equation": "peak_total (allocated + non-torch) = peak_allocated + C_gpu; "
                            "C_gpu = median(NVML used - reserved) over paired profiles"}


def _column(frame, name):
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return np.asarray(frame[name].to_numpy(dtype=float, na_value=np.nan), dtype=float)


def estimate_non_torch(frame) -> dict[str, NonTorchEstimate]:
    """Non-torch memory per GPU name from profiles that state both an NVML-used total and
    the reserved peak of one run.

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows of :meth:`fitting.data.profiles.ProfileSet.to_frame` (one framework);
        ``peak_total_gib``, ``peak_reserved_gib``, ``gpu_name`` and ``flags`` are read. Totals
        flagged :data:`ALLOCATED_PLUS_NON_TORCH` are not device readings and are skipped.

    Returns
    -------
    dict
        GPU name -> :class:`NonTorchEstimate` (GPUs with at least 3 pairs).
    """
    if len(frame) == 0:
        return {}
    total = _column(frame, "peak_total_gib")
    reserved = _column(frame, "peak_reserved_gib")
    gpus = frame["gpu_name"].tolist() if "gpu_name" in frame.columns else [None] * len(frame)
    flags = frame["flags"].tolist() if "flags" in frame.columns else [()] * len(frame)
    pids = frame["profile_id"].tolist() if "profile_id" in frame.columns else [""] * len(frame)
    by_gpu: dict[str, list[tuple[float, str]]] = {}
    for t, r, g, f, pid in zip(total, reserved, gpus, flags, pids):
        if not (np.isfinite(t) and np.isfinite(r)) or not g or ALLOCATED_PLUS_NON_TORCH in tuple(f or ()):
            continue
        by_gpu.setdefault(str(g), []).append((float(t - r), str(pid)))
    out = {}
    for g, pairs in sorted(by_gpu.items()):
        if len(pairs) < 3:
            continue
        d = np.array([p[0] for p in pairs])
        med = float(np.median(d))
        mad = float(np.median(np.abs(d - med)))
        se = _MEDIAN_SE_FACTOR * _MAD_TO_SD * mad / math.sqrt(d.size)
        out[g] = NonTorchEstimate(g, med, se, int(d.size), int(np.sum(d < 0)), tuple(sorted(p[1] for p in pairs)))
    return out
