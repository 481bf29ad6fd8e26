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

``reserved_slack``
    the reserved peak of one forward (prefill) pass, or an NVML device-used reading taken
    right after such a pass (optimum-benchmark's ``MemoryTracker``: ``nvmlDeviceGetMemoryInfo
    (handle).used`` read after the tracked call; PyTorch's caching allocator keeps the
    reserved segments, so the reading is the reserved peak plus ``C_gpu``). The allocator
    reserves more than it hands out: ``reserved = allocated + s * (allocated - W)``, the
    slack ``s`` a fraction of what the pass allocates beyond the weights ``W`` (block
    rounding to 2 MiB segments, blocks split by differently sized activations). ``s`` is
    estimated from the profiles that measured one prefill pass both ways, after
    ``torch.cuda.reset_peak_memory_stats`` and ``empty_cache`` (optimum-benchmark Dec 2023
    ``_alloc``/``_resv``): the median of ``(reserved - allocated) / (allocated - W)`` with the
    standard error of a median (56 A100 pairs: s = 0.392, MAD 0.031; recovering the allocated
    peak of those pairs from their reserved peak errs by 0.4% median, 3.6% p90). A profile of
    this kind enters the fit as ``y = (R + s W) / (1 + s)`` with ``R`` the reserved peak (or the
    NVML reading less ``C_gpu``).

``running_maximum``
    a benchmark that never resets the peak counter (AutoAWQ's ``examples/benchmark.py``:
    ``torch.cuda.max_memory_allocated`` after each round, no ``reset_peak_memory_stats``)
    prints after round ``j`` the maximum of the peaks of rounds ``1..j``:
    ``y_j = max_{i<=j} f(x_i)``. For a spec whose prediction is non-decreasing in every
    feature (``seed`` and ``boxcox`` with their non-negative parameters: weights, KV,
    activations, model memory, batch size, GPUs), a round whose features are all at least
    those of every earlier round has the largest prediction, whatever the parameters:
    :func:`dominating_rounds` finds it. Where that is round ``j`` itself the figure is round
    ``j``'s own peak and enters as a plain observation; where it is an earlier round the
    figure repeats that round's and stays out (:func:`running_maximum_informative`: one
    measurement must not count twice). A round with no dominating round (one feature up,
    another down) is ambiguous and stays out. The AutoAWQ rounds in
    the public data still stay out: its fused modules run their own forward with a KV cache
    preallocated at load (``awq/modules/fused/attn.py``), a mechanism the transformers
    physics does not describe.

``unit_base``
    a source that prints "MB"/"GB" without saying whether it means 10^6 / 10^9 bytes or
    MiB / GiB: its figures, read as binary units, are ``x``; the truth is ``c x`` with one
    factor ``c`` per source, 1 (binary) or ``1.024^-k`` (decimal: 10^9 / 2^30 for GB,
    10^6 / 2^20 for MB). The factor is a discrete nuisance chosen by the likelihood: under
    the overhead model's log-normal error on the uncertain part ``u = c x - E`` (``E`` the
    exact weights and KV), with the architecture effect shared by the source's rows
    (covariance ``sigma^2 I + tau^2 J``), :func:`unit_base_loglik` gives the log-likelihood of
    the printed figures for each factor (with the Jacobian ``log c``), and
    :func:`decide_unit_base` keeps the larger when it beats the other by a likelihood ratio
    of at least 20 (posterior 0.95 under even odds); a source the data cannot decide stays out.
    :func:`fitting.overhead.fit.fit_with_unit_bases` fits the model and the factors jointly (coordinate ascent on
    the profile likelihood: fit, decide, refit with the decided sources, until the choices
    stop changing). ``python -m fitting.refit`` applies it to every source flagged
    ``unit_base_unverified`` whose only exclusion is its unit, and checks each source whose
    base was inferred with the source left out (:mod:`fitting.overhead.unit_bases`); the
    report's "Unit base" table shows the choice and its log likelihood ratio.

Not modelled (profiles stay out with their reason): NVML readings of a process whose cache
was never emptied before the measured call (optimum-benchmark before Nov 2023: the reading
also holds segments cached while loading and quantizing the model; tried as
``reserved_slack`` rows, Mistral-7B's Oct-2023 forward readings came out 3-9% (fp16) and
18-25% (bitsandbytes 4-bit, quantized on the GPU at load) above the chain's leave-one-
architecture-out prediction, 3 of 10 inside the 90% interval); reserved or NVML figures of a generate
run (the growing DynamicCache concatenates new K/V tensors every step and fragments the
allocator: in the paired Dec-2023 generate runs reserved - allocated is 0.14 to 6.7 times
the activations, and saturates at the GPU's capacity), and running maxima across benchmark
rounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["NonTorchEstimate", "estimate_non_torch", "ALLOCATED_PLUS_NON_TORCH", "NVML_USED_AFTER_CALL",
           "RESERVED_SLACK", "CACHE_NOT_EMPTIED", "RUNNING_MAXIMUM", "SlackEstimate",
           "dominating_rounds", "running_maximum_informative", "estimate_prefill_slack", "UNIT_BASE_FACTORS",
           "UnitBaseDecision", "unit_base_loglik", "decide_unit_base"]

#: Profile flag of a total that is the allocated peak plus the non-torch memory.
ALLOCATED_PLUS_NON_TORCH = "allocated_plus_non_torch"
#: Profile flag of an NVML device-used reading taken right after the measured call.
NVML_USED_AFTER_CALL = "nvml_used_after_call"
#: Profile flag of a reading in a process whose allocator cache was never emptied before the call.
CACHE_NOT_EMPTIED = "cache_not_emptied"
#: Response form of a reserved peak (or NVML reading less C_gpu) of one prefill pass.
RESERVED_SLACK = "reserved_slack"
#: Profile flag of a figure that is the running maximum over a benchmark's rounds so far.
RUNNING_MAXIMUM = "running_maximum"
#: Features a spec's prediction is non-decreasing in (non-negative overhead parameters).
MONOTONE_FEATURES = ("weights_gib", "kv_gib", "activations_gib", "model_mem_gib", "batch_size", "n_gpus")
#: Pairs needed for a slack estimate.
_MIN_SLACK_PAIRS = 5

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


@dataclass(frozen=True)
class SlackEstimate:
    """The caching allocator's slack in one prefill pass, from paired profiles.

    ``reserved = allocated + s * (allocated - W)``: the reserved peak exceeds the allocated
    peak by a fraction ``s`` of what the pass allocated beyond the weights.

    Attributes
    ----------
    estimate : float
        ``s``, the median of the pairs' ``(reserved - allocated) / (allocated - W)``.
    se : float
        Standard error of that median.
    mad : float
        Median absolute deviation of the pairs' ratios (their spread, not an SE).
    n : int
        Pairs used.
    profile_ids : tuple of str
    """

    estimate: float
    se: float
    mad: float
    n: int
    profile_ids: tuple = ()

    def allocated_from_reserved(self, reserved_gib, weights_gib):
        """The allocated peak implied by a reserved peak: ``(R + s W) / (1 + s)`` (GiB)."""
        s = self.estimate
        return (np.asarray(reserved_gib, dtype=float) + s * np.asarray(weights_gib, dtype=float)) / (1.0 + s)

    def to_json(self) -> dict:
        return {"model": "allocator_slack_prefill", "estimate": self.estimate, "se": self.se,
                "mad": self.mad, "n_pairs": self.n,
                "equation": "reserved peak of one prefill pass = A + s (A - W), A the allocated peak, W the "
                            "weights; s = median((reserved - allocated) / (allocated - W)) over paired "
                            "profiles; an NVML reading after the pass = reserved + C_gpu"}


def estimate_prefill_slack(allocated_gib, reserved_gib, weights_gib, profile_ids=None) -> SlackEstimate | None:
    """Allocator slack of a prefill pass from pairs of allocated and reserved peaks.

    Parameters
    ----------
    allocated_gib, reserved_gib, weights_gib : array_like
        One entry per profile that measured the same single forward pass both ways (GiB);
        the caller selects those pairs (peak statistics reset before the pass).
    profile_ids : sequence of str, optional

    Returns
    -------
    SlackEstimate or None
        None with fewer than 5 usable pairs (finite, allocated above the weights, reserved at
        or above allocated).
    """
    a = np.asarray(allocated_gib, dtype=float)
    r = np.asarray(reserved_gib, dtype=float)
    w = np.asarray(weights_gib, dtype=float)
    ids = np.asarray(list(profile_ids) if profile_ids is not None else [""] * a.size, dtype=object)
    ok = np.isfinite(a) & np.isfinite(r) & np.isfinite(w) & (a > w) & (r >= a)
    if int(ok.sum()) < _MIN_SLACK_PAIRS:
        return None
    ratio = (r[ok] - a[ok]) / (a[ok] - w[ok])
    med = float(np.median(ratio))
    mad = float(np.median(np.abs(ratio - med)))
    se = _MEDIAN_SE_FACTOR * _MAD_TO_SD * mad / math.sqrt(ratio.size)
    return SlackEstimate(med, se, mad, int(ratio.size), tuple(sorted(str(x) for x in ids[ok])))


def dominating_rounds(series, order, features, keys=MONOTONE_FEATURES) -> np.ndarray:
    """For each running-maximum row, the row whose prediction its figure equals.

    Parameters
    ----------
    series : sequence
        The benchmark run each row belongs to (rows of one run share the peak counter).
    order : sequence of float
        The round's position within its run (source order).
    features : dict of ndarray
        Feature arrays (:data:`fitting.overhead.specs.FEATURE_NAMES`); ``keys`` are compared.
    keys : tuple of str
        Features the prediction is non-decreasing in.

    Returns
    -------
    ndarray of int
        Row index of the round (this one or an earlier one of the same run) whose features are
        at least those of every round so far, or -1 where no round dominates (ambiguous).
    """
    series = np.asarray(list(series), dtype=object)
    order = np.asarray(order, dtype=float)
    x = np.column_stack([np.asarray(features[k], dtype=float) for k in keys])
    out = np.full(series.size, -1, dtype=int)
    for run in dict.fromkeys(series.tolist()):
        rows = np.flatnonzero(series == run)
        rows = rows[np.argsort(order[rows], kind="stable")]
        for pos, j in enumerate(rows):
            past = rows[: pos + 1]
            for i in past[::-1]:
                if np.all(x[i] >= x[past] - 1e-12):
                    out[j] = i
                    break
    return out


def running_maximum_informative(dominating) -> np.ndarray:
    """Rows whose running-maximum figure is their own round's peak (``dominating[j] == j``).

    A row dominated by an earlier round prints that round's figure again: it adds no
    information (fitting it would count one measurement twice and understate the standard
    errors), so the caller excludes it; an ambiguous row (-1) is excluded as well.
    """
    idx = np.asarray(dominating, dtype=int)
    return idx == np.arange(idx.size)


# ----------------------------------------------------------------------------- unit base
#: GiB per printed unit read as binary, for each reading of a "GB" / "MB" label.
UNIT_BASE_FACTORS = {"GB": {"binary": 1.0, "decimal": 1e9 / 2**30},
                     "MB": {"binary": 1.0, "decimal": 1e6 / 2**20}}
#: Likelihood ratio a unit base must reach over the other to be taken (posterior 0.95, even odds).
UNIT_BASE_MIN_LR = 20.0


@dataclass(frozen=True)
class UnitBaseDecision:
    """The unit base of one source's "MB"/"GB" figures, as the data decide it.

    Attributes
    ----------
    source : str
    base : {"binary", "decimal", "undecided"}
    factor : float or None
        GiB per printed unit read as binary (None when undecided).
    log_lr : float
        Log-likelihood of the better reading minus the other's (inf when the other is impossible:
        figures at or below the exact weights + KV).
    n : int
        Figures of the source.
    loglik : dict
        Log-likelihood of each reading.
    """

    source: str
    base: str
    factor: float | None
    log_lr: float
    n: int
    loglik: dict

    @property
    def decided(self) -> bool:
        return self.base != "undecided"


def unit_base_loglik(printed_gib, exact_gib, predicted_uncertain_gib, *, within_scale: float,
                     between_scale: float = 0.0, factor: float = 1.0) -> float:
    """Log-likelihood of one source's printed figures when the truth is ``factor x printed``.

    Parameters
    ----------
    printed_gib : array_like
        The figures read as binary units (GiB).
    exact_gib : array_like
        Exact part of each (weights + workload KV, GiB).
    predicted_uncertain_gib : array_like
        The fitted model's uncertain part (activations + overhead, GiB) for each.
    within_scale, between_scale : float
        Log-unit standard deviations of the model's error: within an architecture, and of the
        architecture effect the source's rows share.
    factor : float
        GiB per printed unit (1 binary; :data:`UNIT_BASE_FACTORS` decimal).

    Returns
    -------
    float
        ``-inf`` when a figure would be at or below its exact part.
    """
    x = np.asarray(printed_gib, float)
    u = factor * x - np.asarray(exact_gib, float)
    if np.any(u <= 0) or not np.all(np.isfinite(u)):
        return -math.inf
    r = np.log(u) - np.log(np.asarray(predicted_uncertain_gib, float))
    n = r.size
    s2, t2 = float(within_scale) ** 2, float(between_scale or 0.0) ** 2
    # r ~ N(0, s2 I + t2 J): closed-form inverse and determinant of the compound-symmetric covariance
    quad = (np.sum(r**2) - t2 * np.sum(r) ** 2 / (s2 + n * t2)) / s2
    logdet = (n - 1) * math.log(s2) + math.log(s2 + n * t2)
    # density of u is log-normal (1/u); the printed figure is x = y / factor (Jacobian factor)
    return float(-0.5 * (quad + logdet + n * math.log(2 * math.pi)) - np.sum(np.log(u)) + n * math.log(factor))


def decide_unit_base(source: str, logliks: dict, *, label: str = "GB", min_lr: float = UNIT_BASE_MIN_LR,
                     n: int = 0) -> UnitBaseDecision:
    """Pick a source's unit base from ``{"binary": ll, "decimal": ll}``; undecided below ``min_lr``.

    >>> decide_unit_base("s", {"binary": -3.0, "decimal": -10.0}).base
    'binary'
    >>> decide_unit_base("s", {"binary": -3.0, "decimal": -4.0}).base
    'undecided'
    """
    ranked = sorted(logliks.items(), key=lambda kv: kv[1], reverse=True)
    (best, ll_best), (_, ll_next) = ranked[0], ranked[1]
    if not math.isfinite(ll_best):
        return UnitBaseDecision(source, "undecided", None, math.nan, n, dict(logliks))
    log_lr = math.inf if not math.isfinite(ll_next) else ll_best - ll_next
    if log_lr < math.log(min_lr):
        return UnitBaseDecision(source, "undecided", None, log_lr, n, dict(logliks))
    return UnitBaseDecision(source, best, UNIT_BASE_FACTORS[label][best], log_lr, n, dict(logliks))
