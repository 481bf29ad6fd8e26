r"""Today's rules of thumb, evaluated on the same profiles as the fitted estimator.

Each baseline predicts the quantity the framework measures (GiB per GPU; see
:mod:`fitting.report.validate`) from the same physics features the estimator uses
(:func:`fitting.overhead.specs.build_features` with physics weights): ``W`` weights per GPU,
``KV`` the workload's KV cache per GPU (0 for frameworks that preallocate a KV pool,
whose measured quantity is the non-KV footprint), ``A`` the first-order activations,
``M = W + KV + A``, ``n`` GPUs, ``b`` concurrent sequences.

========================  ===================================================================
baseline                  prediction (GiB per GPU)
========================  ===================================================================
``seed_plan_8pct``        :math:`1.08\,M` -- the seed plan's current formula, "a fixed 8 % of
                          weights + KV + activations"
``seed_plan_vllm``        :math:`M + 14\,\mathrm{GB} + 0.05 M + 0.15 (W_{tot}/n)(n-1) + 0.002 M
                          \log_2 b` -- the seed plan's proposed hand-set vLLM constants
                          (vLLM only). Its 14 GB is a decimal-GB figure (13.04 GiB) and an
                          artefact: nvidia-smi shows vLLM's preallocated KV pool
                          (``gpu_memory_utilization`` of the card) whatever the model, so it is
                          no overhead; the rule is scored here on what it claims to predict.
``weights_x1_2``          :math:`1.2\,W + KV` -- "1.2 x weights"
``weights_plus_650mb``    :math:`W + 0.65\,\mathrm{GB} + KV` -- "weights + 650 MB"
                          (650e6 bytes = 0.605 GiB)
========================  ===================================================================

The two rules of thumb have no KV term; where the measured quantity includes the
workload's KV cache (frameworks whose cache grows: transformers, PyTorch, llama.cpp) the
exact physics KV is added, so that they are charged only for what they claim to model.
The seed-plan constants are read from :data:`fitting.overhead.fit.SEED_PLAN_CONSTANTS`
(the same numbers the unfitted fallback uses) and evaluated with the ``seed`` spec's own
code. For TGI, SGLang, llama.cpp and TensorRT-LLM the seed plan's hand-set constants are
not known to us (:data:`UNKNOWN_SEED_CONSTANTS`): no numbers are invented for them.

None of the baselines has a prediction interval: their coverage is "n/a".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from fitting.overhead.fit import SEED_PLAN_CONSTANTS
from fitting.overhead.specs import SEED
from fitting.report.metrics import accuracy_metrics

__all__ = ["Baseline", "BASELINES", "UNKNOWN_SEED_CONSTANTS", "predictions", "compare",
           "GB_650_GIB", "SEED_BASELINE_GB"]

#: 650 MB (decimal, 650e6 bytes) in GiB.
GB_650_GIB = 650e6 / 2**30
#: The seed plan's vLLM "baseline 14 GB" (decimal gigabytes).
SEED_BASELINE_GB = 14.0

#: Frameworks for which the seed plan's own hand-set constants are not known to us.
UNKNOWN_SEED_CONSTANTS = {
    fw: (f"the seed plan's hand-set constants for {label} are not known to us; no numbers are invented "
         "(its generic 8% rule is evaluated instead)")
    for fw, label in (("tgi", "TGI"), ("llamacpp", "llama.cpp"), ("trtllm", "TensorRT-LLM"), ("sglang", "SGLang"))
}


@dataclass(frozen=True)
class Baseline:
    """One rule: name, label, description and ``predict(features, framework) -> GiB or None``."""

    name: str
    label: str
    description: str
    predict: Callable


def _f(x, k):
    return np.asarray(x[k], dtype=float)


def _seed_spec(x, constants):
    p = np.array([constants[n] for n in SEED.param_names], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(SEED.predict_response(x, p), dtype=float)


def _seed_8pct(x, framework):
    return _seed_spec(x, SEED_PLAN_CONSTANTS["default"])


def _seed_vllm(x, framework):
    if framework != "vllm":
        return None
    c = dict(SEED_PLAN_CONSTANTS["vllm"])
    # the plan's figure is decimal: 14 GB = 14e9 bytes; the constants must say the same
    if not np.isclose(c["baseline_gib"], SEED_BASELINE_GB * 1e9 / 2**30, rtol=1e-9):
        raise ValueError(f"fitting.overhead.fit.SEED_PLAN_CONSTANTS['vllm']['baseline_gib'] = "
                         f"{c['baseline_gib']} is not 14 GB (14e9 bytes)")
    return _seed_spec(x, c)


def _x12(x, framework):
    return 1.2 * _f(x, "weights_gib") + _f(x, "kv_gib")


def _plus650(x, framework):
    return _f(x, "weights_gib") + GB_650_GIB + _f(x, "kv_gib")


BASELINES = (
    Baseline("seed_plan_8pct", "seed plan: fixed 8% of weights+KV+activations",
             "1.08 x (weights + workload KV + activations) per GPU", _seed_8pct),
    Baseline("seed_plan_vllm", "seed plan: vLLM 14 GB + 5% + 15%/GPU + 0.2% log2 b",
             "M + 14 GB + 0.05 M + 0.15 (W/n)(n-1) + 0.002 M log2(b); vLLM only; the 14 GB is vLLM's "
             "preallocated KV pool as nvidia-smi shows it, not overhead", _seed_vllm),
    Baseline("weights_x1_2", "1.2 x weights", "1.2 x weights per GPU (+ the workload KV where it grows)", _x12),
    Baseline("weights_plus_650mb", "weights + 650 MB",
             "weights per GPU + 650e6 bytes (+ the workload KV where it grows)", _plus650),
)


def predictions(features: dict, framework: str) -> dict:
    """Every applicable baseline's prediction of the measured quantity.

    Parameters
    ----------
    features : dict of ndarray
        :data:`fitting.overhead.specs.FEATURE_NAMES` (GiB per GPU), physics weights.
    framework : str

    Returns
    -------
    dict
        ``{name: ndarray (GiB per GPU)}``; a baseline that does not apply to the framework
        gives an all-NaN array.
    """
    n = len(np.asarray(features["weights_gib"]))
    out = {}
    for b in BASELINES:
        p = b.predict(features, framework)
        out[b.name] = np.full(n, np.nan) if p is None else np.broadcast_to(np.asarray(p, float), (n,)).copy()
    return out


def _not_applicable(name, framework):
    if name == "seed_plan_vllm" and framework != "vllm":
        return UNKNOWN_SEED_CONSTANTS.get(framework, f"the seed plan states vLLM constants only; none for {framework}")
    return None


def compare(rows, frameworks: dict) -> dict:
    """Baselines next to the estimator, per framework, on the same profiles.

    Parameters
    ----------
    rows : pandas.DataFrame
        :attr:`fitting.report.validate.ValidationResult.rows` (with ``baseline_<name>_ape``).
    frameworks : dict
        :attr:`fitting.report.validate.ValidationResult.frameworks`.

    Returns
    -------
    dict
        ``{"methods": [{name, label, description}], "by_framework": {fw: {"n", "methods":
        {method: {"overall": metrics, "by_size_class": {class: metrics}} or
        {"not_applicable": reason}}}}, "unknown_seed_constants": {...}}``. Rows are the
        profiles where the estimator predicted (finite in-sample prediction); ``ours_lomo``
        and ``ours_in_sample`` are the estimator's own numbers on those rows. Baselines
        have no intervals: coverage None.
    """
    methods = [{"name": "ours_lomo", "label": "ours (leave-one-architecture-out)",
                "description": "fitted overhead, each model predicted by a fit without it"},
               {"name": "ours_in_sample", "label": "ours (in-sample)",
                "description": "the coefficient file's fit"}]
    methods += [{"name": b.name, "label": b.label, "description": b.description} for b in BASELINES]
    out = {"methods": methods, "by_framework": {}, "unknown_seed_constants": dict(UNKNOWN_SEED_CONSTANTS)}
    if rows is None or len(rows) == 0:
        return out
    cols = {"ours_lomo": ("lomo_ape", "lomo_covered"), "ours_in_sample": ("ape", "covered")}
    cols.update({b.name: (f"baseline_{b.name}_ape", None) for b in BASELINES})
    fws = sorted(set(rows["framework"]))
    pooled = [fw for fw in fws if (frameworks.get(fw) or {}).get("status") == "fitted"]
    for fw in (["fitted"] if pooled else []) + fws:
        sub = rows[rows["framework"].isin(pooled if fw == "fitted" else [fw])]
        sub = sub[np.isfinite(sub["pred_gib"].to_numpy(float))]
        entry = {"n": int(len(sub)), "status": "pooled over fitted frameworks" if fw == "fitted"
                 else (frameworks.get(fw) or {}).get("status"), "methods": {}}
        for m, (ac, cc) in cols.items():
            why = None if fw == "fitted" else _not_applicable(m, fw)
            a = sub[ac].to_numpy(float) if ac in sub else np.full(len(sub), np.nan)
            if why is None and not np.isfinite(a).any():
                why = "no profile of this framework it applies to" if fw == "fitted" else "no prediction"
            if why is not None:
                entry["methods"][m] = {"not_applicable": why}
                continue
            cov = sub[cc] if cc else None
            res = {"overall": accuracy_metrics(a, cov), "by_size_class": {}}
            for c in sorted(set(sub["size_class"])):
                sel = (sub["size_class"] == c).to_numpy()
                res["by_size_class"][c] = accuracy_metrics(a[sel], cov[sel] if cov is not None else None)
            entry["methods"][m] = res
        out["by_framework"][fw] = entry
    return out
