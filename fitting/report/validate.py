r"""``python -m fitting.validate``: accuracy of the estimator on the profiles, by size class.

For every profile the refit used (:func:`fitting.overhead.observations.build_observations`: the same
observed response ``y``, GiB per GPU, and the same exclusions), the estimator's prediction
of that quantity, its ``1 - alpha`` prediction interval and the absolute percentage error

.. math:: \mathrm{APE} = |\hat y - y| / y

with ``y`` the quantity the framework measures: the non-KV footprint per GPU (weights +
overhead) for frameworks that preallocate a KV pool (vLLM, SGLang, TRT-LLM, TGI), the peak
per GPU for frameworks whose KV cache grows (transformers, PyTorch, llama.cpp).

Two schemes:

``in_sample``
    The coefficient file's fit (``fitted_params/<framework>/latest.json``, evaluated by
    :class:`fitting.estimator.Estimator`, intervals from its covariance).
``lomo`` (leave one model out)
    For each model the selected spec is refitted on the other models' profiles with
    :func:`fitting.overhead.fit.fit_spec` (what the refit's cross-validation does) and
    the held-out profiles are predicted with :func:`fitting.overhead.fit.predict_interval`.
    For an *unfitted* framework the prediction is the seed plan's fallback constants,
    which were not fitted to any profile: both schemes are then out-of-sample alike.

Two views of every prediction (each scheme): the **estimator** view (the primary one) uses
the physics weights, as a user's query does; the **measured-weights** view uses the
measured weights where the profile has them, exactly the offset the fit used (its
leave-one-architecture-out MAPE is the ``cv.mape`` of the coefficient file). Their difference is
the error of the weight physics.

For vLLM also: the KV bytes per token (``kv_cache_gib / kv_cache_tokens`` against
:func:`fitting.physics.memory.kv_bytes_per_token`), and, where the GPU memory ``G`` and
``gpu_memory_utilization`` ``u`` are known, the KV pool in tokens
``floor((u G - non_kv) / kv_bytes_per_token / 16) * 16`` against vLLM's "GPU KV cache size".

Metrics (fractions in the JSON, percent in the text): MAPE, median APE, p90 APE and the
coverage of the prediction intervals, overall and per size class, against the seed plan's
targets (:data:`fitting.overhead.observations.SIZE_CLASS_TARGETS_MAPE`). Baselines
(:mod:`fitting.report.baselines`) are evaluated on the same profiles in the same run.

Exit status: 0 when every gated size class (the five with a seed-plan target, in every
fitted framework) has a MAPE within ``--max-error`` percent under ``--scheme``; 1 otherwise,
naming the failing rows; 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fitting import physics
from fitting.atomic_io import atomic_write_text
from fitting.data.frameworks import FRAMEWORKS
from fitting.data.profiles import load_profiles
from fitting.data.registry import resolve_model
from fitting.estimator import CoefficientFileError, Estimator, coefficients
from fitting.overhead.fit import fit_spec, predict_interval
from fitting.overhead.observations import (
    SIZE_CLASS_ORDER,
    SIZE_CLASS_TARGETS_MAPE,
    build_observations,
)
from fitting.overhead.prediction import get_prediction
from fitting.overhead.specs import build_features, get_spec
from fitting.physics.vllm import vllm_hybrid_kv_layout, vllm_pool_tokens
from fitting.report import baselines as bl
from fitting.report.metrics import accuracy_metrics, ape, coverage_band, covered
from fitting.report.validate_render import render, render_gate
from fitting.report.validate_seed import explain_seed_plan

__all__ = [
    "ValidationResult",
    "validate",
    "validate_frame",
    "accuracy_metrics",
    "summarise",
    "apply_gate",
    "render_text",
    "main",
    "GATED_CLASSES",
    "SCHEMES",
]

_GIB = float(2**30)
#: Size classes with a seed-plan target; the gate applies to these.
GATED_CLASSES = ("1-2B", "7-8B", "13-30B", "40-70B", "MoE")
#: Schemes: name -> (APE column, covered column) of the rows table; estimator view first.
SCHEMES = {
    "in_sample": ("ape", "covered"),
    "lomo": ("lomo_ape", "lomo_covered"),
    "in_sample_measured_weights": ("fit_ape", "fit_covered"),
    "lomo_measured_weights": ("lomo_fit_ape", "lomo_fit_covered"),
}
_SCHEME_LABEL = {"in_sample": "in-sample", "lomo": "leave-one-architecture-out",
                 "in_sample_measured_weights": "in-sample, measured weights",
                 "lomo_measured_weights": "leave-one-architecture-out, measured weights"}
#: vLLM's default KV block size (tokens); the pool is a whole number of blocks.
_VLLM_BLOCK = 16


@dataclass
class ValidationResult:
    """Everything one validation run found.

    Attributes
    ----------
    rows : pandas.DataFrame
        One row per profile used by a fit (all frameworks): identifiers, ``measured_gib``
        (the observed response, GiB per GPU), ``pred_gib, lower_gib, upper_gib, ape,
        covered`` (in-sample, estimator view), ``lomo_*`` (leave-one-architecture-out), ``fit_*``
        and ``lomo_fit_*`` (measured-weights view), ``kv_bpt_*`` (bytes per token per GPU),
        ``kv_pool_tokens_*`` (tokens per engine), ``baseline_<name>_gib/_ape``.
    frameworks : dict
        Per framework: coefficient file, status, spec, counts, staleness.
    excluded : list of dict
        ``{"framework", "profile_id", "reason"}`` of every profile not validated.
    seed_plan : list of dict
        Profiles from ``profiles/seed-plan/`` with their most likely explanation.
    alpha : float
    """

    rows: object
    frameworks: dict
    excluded: list = field(default_factory=list)
    seed_plan: list = field(default_factory=list)
    alpha: float = 0.10
    sources: dict = field(default_factory=dict)

    def to_dict(self, *, max_error=None, scheme="lomo", include_unfitted=False) -> dict:
        """JSON-ready dict: summaries, baselines, KV checks, rows, gate (when ``max_error``)."""

        out = {
            "alpha": self.alpha,
            "interval_level": 1.0 - self.alpha,
            "units": {"*_gib": "GiB (2**30 bytes) per GPU", "ape, mape, *_ape": "fraction (0.05 = 5 %)",
                      "coverage": "fraction of profiles inside the prediction interval",
                      "kv_bpt_*": "bytes per token per GPU", "kv_pool_tokens_*": "tokens per engine"},
            "sources": dict(self.sources),
            "targets_mape": _targets(),
            "frameworks": self.frameworks,
            "summary": {s: summarise(self.rows, s, self.frameworks) for s in SCHEMES},
            "baselines": bl.compare(self.rows, self.frameworks),
            "kv_checks": _kv_summary(self.rows),
            "seed_plan": self.seed_plan,
            "excluded": self.excluded,
            "rows": _records(self.rows),
        }
        if max_error is not None:
            out["gate"] = apply_gate(self.rows, self.frameworks, max_error, scheme=scheme,
                                     include_unfitted=include_unfitted)
        return _jsonable(out)


# ------------------------------------------------------------------------------ metrics
def _targets():
    return dict(SIZE_CLASS_TARGETS_MAPE)


def summarise(rows, scheme: str, frameworks: dict | None = None) -> dict:
    """Metrics of one scheme per framework and pooled over the fitted frameworks.

    Returns
    -------
    dict
        ``{"fitted": block, "<framework>": block}`` where a block is ``{"overall": metrics,
        "by_size_class": {class: metrics + target_mape, meets_target, n_models}}``;
        ``fitted`` pools every framework whose coefficient file has status ``fitted``.
    """
    ape_col, cov_col = SCHEMES[scheme]
    out = {}
    if rows is None or len(rows) == 0:
        return {"fitted": _block(rows, ape_col, cov_col)}
    fitted = [fw for fw, d in (frameworks or {}).items() if d.get("status") == "fitted"]
    out["fitted"] = _block(rows[rows["framework"].isin(fitted)], ape_col, cov_col)
    for fw in sorted(set(rows["framework"])):
        out[fw] = _block(rows[rows["framework"] == fw], ape_col, cov_col)
    return out


def _block(rows, ape_col, cov_col) -> dict:
    targets = _targets()
    if rows is None or len(rows) == 0:
        return {"overall": accuracy_metrics([]), "by_size_class": {}}
    block = {"overall": accuracy_metrics(rows[ape_col], rows[cov_col]), "by_size_class": {}}
    present = set(rows["size_class"])
    for c in [c for c in SIZE_CLASS_ORDER if c in present] + sorted(present - set(SIZE_CLASS_ORDER)):
        sub = rows[rows["size_class"] == c]
        m = accuracy_metrics(sub[ape_col], sub[cov_col])
        if m["n"] == 0:
            continue
        m["n_models"] = int(sub.loc[np.isfinite(sub[ape_col].to_numpy(float)), "model_id"].nunique())
        t = targets.get(c)
        m["target_mape"] = t
        m["meets_target"] = None if t is None else bool(m["mape"] < t)
        block["by_size_class"][c] = m
    return block


def _kv_summary(rows) -> dict:
    if rows is None or len(rows) == 0:
        return {}
    out = {"kv_bytes_per_token": accuracy_metrics(rows["kv_bpt_ape"])}
    for scheme, prefix in (("in_sample", "kv_pool"), ("lomo", "lomo_kv_pool")):
        out[f"kv_pool_tokens_{scheme}"] = accuracy_metrics(rows[f"{prefix}_ape"], rows[f"{prefix}_covered"])
    return out


# --------------------------------------------------------------------------------- gate
def apply_gate(rows, frameworks: dict, max_error_pct: float, *, scheme: str = "lomo",
               include_unfitted: bool = False, classes=GATED_CLASSES) -> dict:
    """The CI gate: every gated size class with data within ``max_error_pct`` MAPE.

    Parameters
    ----------
    rows : pandas.DataFrame
        :attr:`ValidationResult.rows`.
    frameworks : dict
        :attr:`ValidationResult.frameworks`.
    max_error_pct : float
        Largest acceptable MAPE, percent.
    scheme : str
        One of :data:`SCHEMES` (default leave-one-architecture-out, the estimator view).
    include_unfitted : bool
        Also gate frameworks whose coefficient file is ``unfitted`` (seed-plan fallback).
    classes : sequence of str
        Size classes gated (default: the five with a seed-plan target).

    Returns
    -------
    dict
        ``passed``, ``max_error`` (fraction), ``scheme``, ``checked`` (one entry per
        framework x class with data) and ``failing`` (those above the limit, each with its
        ``rows`` sorted by APE, largest first, the rows above the limit).
    """
    ape_col, _ = SCHEMES[scheme]
    limit = float(max_error_pct) / 100.0
    checked, failing = [], []
    for fw, info in sorted(frameworks.items()):
        if info.get("status") != "fitted" and not include_unfitted:
            continue
        sub = rows[rows["framework"] == fw] if len(rows) else rows
        for c in classes:
            part = sub[sub["size_class"] == c] if len(sub) else sub
            a = part[ape_col].to_numpy(dtype=float) if len(part) else np.zeros(0)
            ok = np.isfinite(a)
            if not ok.any():
                continue
            mape = float(np.mean(a[ok]))
            entry = {"framework": fw, "size_class": c, "n": int(ok.sum()), "mape": mape,
                     "passed": bool(mape <= limit)}
            checked.append(entry)
            if not entry["passed"]:
                bad = part[ok].assign(_a=a[ok]).sort_values("_a", ascending=False)
                bad = bad[bad["_a"] > limit]
                entry = dict(entry, rows=[{"profile_id": r.profile_id, "model_id": r.model_id,
                                           "measured_gib": r.measured_gib,
                                           "predicted_gib": r[_pred_col(scheme)], "ape": r._a}
                                          for _, r in bad.iterrows()])
                failing.append(entry)
    return {"max_error": limit, "scheme": scheme, "include_unfitted": bool(include_unfitted),
            "classes": list(classes), "passed": not failing, "checked": checked, "failing": failing}


def _pred_col(scheme):
    return {"in_sample": "pred_gib", "lomo": "lomo_pred_gib", "in_sample_measured_weights": "fit_pred_gib",
            "lomo_measured_weights": "lomo_fit_pred_gib"}[scheme]


# --------------------------------------------------------------------------- validation
def validate(profiles_dir, params_dir, *, alpha: float = 0.10, lomo: bool = True,
             frameworks=None) -> ValidationResult:
    """Load the profiles and coefficient files and validate every framework that has both.

    Parameters
    ----------
    profiles_dir : str or Path
        Folder of profile JSON files (searched recursively; invalid files are skipped and
        listed as excluded). Profiles under a ``seed-plan`` folder are explained, not scored.
    params_dir : str or Path
        ``fitted_params/``: one ``<framework>/latest.json`` per framework.
    alpha : float
        ``1 - alpha`` prediction intervals (0.10: 90 %).
    lomo : bool
        Run leave-one-architecture-out (refits; a few seconds).
    frameworks : sequence of str, optional
        Restrict to these frameworks.

    Returns
    -------
    ValidationResult
    """

    params_dir = Path(params_dir)
    if not params_dir.is_dir():
        raise FileNotFoundError(f"{params_dir}: no such coefficient folder (run python -m fitting.refit first)")
    pset = load_profiles(profiles_dir, strict=False)
    frame = pset.to_frame()
    estimators = {}
    for fw in (frameworks or FRAMEWORKS):
        if (params_dir / fw / "latest.json").is_file():
            estimators[fw] = Estimator.load(params_dir / fw)
    if not estimators:
        raise FileNotFoundError(f"{params_dir}: no <framework>/latest.json coefficient file "
                                "(run python -m fitting.refit first)")
    result = validate_frame(frame, estimators, alpha=alpha, lomo=lomo)
    result.excluded += [{"framework": None, "profile_id": str(p), "reason": f"invalid profile file: {r}"}
                        for p, r in pset.skipped]
    result.sources = {"profiles_dir": str(profiles_dir), "params_dir": str(params_dir),
                      "n_profile_files": len(pset.records) + len(pset.skipped)}
    return result


def _is_seed_plan(frame):
    paths = frame["path"].astype(str) if "path" in frame.columns else None
    by_path = paths.str.contains(r"(?:^|[\\/])seed-plan[\\/]", regex=True) if paths is not None else False
    kind = frame.get("provenance_kind")
    by_kind = kind.astype(str).str.contains("seed", case=False) if kind is not None else False
    return (by_path | by_kind).to_numpy(dtype=bool) if len(frame) else np.zeros(0, dtype=bool)


def validate_frame(frame, estimators: dict, *, alpha: float = 0.10, lomo: bool = True) -> ValidationResult:
    """Validate coefficient files against a profiles DataFrame (no files read).

    Parameters
    ----------
    frame : pandas.DataFrame
        :meth:`fitting.data.profiles.ProfileSet.to_frame` (memory columns in GiB).
    estimators : dict
        ``{framework: Estimator}``.
    alpha : float
    lomo : bool

    Returns
    -------
    ValidationResult
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    seed_mask = _is_seed_plan(frame)
    seed_ids = set(frame.loc[seed_mask, "profile_id"].astype(str)) if len(frame) else set()
    parts, excluded, fws = [], [], {}
    for fw, est in estimators.items():
        obs = build_observations(frame, fw)  # the whole input, exactly as the refit read it
        doc = est.document
        stale = doc.get("input_sha256") != coefficients.input_sha256(frame, fw)
        fws[fw] = {"status": est.status, "version": est.version, "params_file": str(est.path),
                   "selected_spec": est.selected_spec, "kv_cache_mode": est.kv_cache_mode,
                   "observed_quantity": doc.get("observed_quantity", {}).get("name"),
                   "n_total": obs.n_total, "n_used": obs.n_used, "n_models": int(len(set(obs.groups))),
                   "stale": bool(stale), "status_reason": doc.get("status_reason"),
                   "file_cv_mape": ((doc["specs"][est.selected_spec].get("cv") or {}).get("mape"))}
        excluded += [{"framework": fw, **e} for e in obs.excluded if e["profile_id"] not in seed_ids]
        if obs.n_used:
            part, notes = _framework_rows(obs, est, frame, alpha, lomo)
            n_pred = int(np.isfinite(part["pred_gib"].to_numpy(float)).sum())
            if n_pred < len(part):
                notes.append(f"{len(part) - n_pred} profile(s) used by the fit cannot be predicted by the "
                             "estimator (see cannot_predict in --json)")
            fws[fw]["n_predicted"] = n_pred
            fws[fw]["notes"] = notes
            if lomo and est.status == "fitted":
                fws[fw]["calibration"] = calibration_curve(obs, est.selected_spec)
            parts.append(part)
        else:
            fws[fw]["n_predicted"] = 0
            fws[fw]["notes"] = []
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["framework", "size_class"])
    seed_rows = frame[seed_mask].reset_index(drop=True) if len(frame) else frame

    seed = explain_seed_plan(seed_rows, estimators) if len(seed_rows) else []
    return ValidationResult(rows=rows, frameworks=fws, excluded=excluded, seed_plan=seed, alpha=alpha)


def _physics_features(obs, meta):
    """Features with the physics weights instead of measured ones (what a query sees).

    ``meta`` holds the profiles' rows aligned with ``obs.table``. Returns (features, error
    per row: None or the reason the estimator cannot predict it).
    """

    t = obs.table
    feats = {k: np.array(v, dtype=float, copy=True) for k, v in obs.features.items()}
    errors = np.array([None] * len(t), dtype=object)
    dts = [_s(v) for v in _col(meta, "dtype")]
    qus = [_s(v) for v in _col(meta, "quantization")]
    groups: dict = {}
    for i, key in enumerate(zip(t["model_id"], dts, qus)):
        groups.setdefault(key, []).append(i)
    tp, pp = t["tp"].to_numpy().astype(int), t["pp"].to_numpy().astype(int)
    for (mid, dt, qu), idx in groups.items():
        idx = np.asarray(idx)
        entry = resolve_model(mid)
        arch = entry.architecture
        dt_eff = dt or getattr(arch, "torch_dtype", None) or "bfloat16"
        # as the estimator: a checkpoint that ships quantized weights (DeepSeek-R1, the Qwen FP8
        # repos) loads in that format when the profile states no other
        qu_eff = qu if qu is not None else getattr(entry, "native_quantization", None)
        try:
            f = build_features(arch, framework=obs.framework, tp=tp[idx], pp=pp[idx], dtype=dt_eff,
                               quantization=qu_eff)
        except Exception as exc:  # noqa: BLE001 - the estimator cannot predict this group
            errors[idx] = f"estimator cannot compute the weights: {type(exc).__name__}: {exc}"
            for k in ("weights_gib", "weights_total_gib"):
                feats[k][idx] = np.nan
            continue
        feats["weights_gib"][idx] = f["weights_gib"]
        feats["weights_total_gib"][idx] = f["weights_total_gib"]
    feats["model_mem_gib"] = feats["weights_gib"] + feats["kv_gib"] + feats["activations_gib"]
    return feats, errors


def _col(meta, name, dtype=object):
    """Column of the aligned profile rows as an array (object, or float with NaN for
    anything not numeric); all None/NaN where the frame lacks the column."""
    if name not in meta.columns:
        return np.full(len(meta), None if dtype is object else np.nan, dtype=dtype)
    if dtype is object:
        return meta[name].to_numpy(dtype=object)
    return pd.to_numeric(meta[name], errors="coerce").to_numpy(dtype=float)


def _s(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)


def _predict_file(est, feats, alpha):
    """(median, lower, upper) of the coefficient file's selected spec (GiB)."""
    d = est.term.distribution(feats)
    return (np.asarray(d.median, float), np.asarray(d.quantile(alpha / 2), float),
            np.asarray(d.quantile(1 - alpha / 2), float))


#: Nominal levels of the reliability curve (``--calibration``).
CALIBRATION_LEVELS = (0.50, 0.80, 0.90, 0.95)


def calibration_curve(obs, spec_name, levels=CALIBRATION_LEVELS) -> dict:
    """Reliability of the prediction intervals: nominal level against observed coverage,
    leave-one-architecture-out, on the measured-weights view (the one prediction path).

    Returns
    -------
    dict
        ``levels``, ``coverage`` (fractions), ``n`` (profiles predicted), ``band_lower`` /
        ``band_upper`` (the binomial 95 % band of each level for ``n`` intervals) and
        ``within_band``; ``status`` says why when it could not run.
    """
    groups = obs.groups
    folds = sorted(set(groups))
    if len(folds) < 3:
        return {"status": f"not run: {len(folds)} architecture(s), needs >= 3", "levels": list(levels)}
    spec = get_spec(spec_name)
    hits = {lv: np.full(obs.n_used, np.nan) for lv in levels}
    for m in folds:
        test = groups == m
        fit = fit_spec(spec_name, {k: v[~test] for k, v in obs.features.items()}, obs.y[~test], groups=groups[~test])
        if fit.status != "fitted":
            continue
        pr = get_prediction(spec, fit.estimate, fit.cov, fit.error_model,
                            {k: v[test] for k, v in obs.features.items()}, identified=fit.identified)
        for lv in levels:
            lo, hi = pr.conf_int(1.0 - lv)
            hits[lv][test] = covered(obs.y[test], lo, hi)
    n = int(np.isfinite(hits[levels[0]]).sum())
    cov = [float(np.nanmean(hits[lv])) if n else None for lv in levels]
    bands = [coverage_band(n, lv) for lv in levels]
    return {"status": "ok", "levels": list(levels), "coverage": cov, "n": n,
            "band_lower": [b[0] if b else None for b in bands], "band_upper": [b[1] if b else None for b in bands],
            "within_band": [bool(b and c is not None and b[0] <= c <= b[1]) for b, c in zip(bands, cov)]}


def _lomo(obs, spec_name, feats_phys, alpha):
    """Leave-one-architecture-out predictions in both views (NaN where a fold failed): folds
    are :attr:`Observations.groups` (identical architectures held out together), each fitted
    with the random-intercept error model and predicted by the one prediction path."""

    n = obs.n_used
    out = {k: np.full(n, np.nan) for k in ("pred", "lo", "hi", "fpred", "flo", "fhi")}
    groups = obs.groups
    models = sorted(set(groups))
    if len(models) < 3:
        return out, f"leave-one-architecture-out not run: {len(models)} architecture(s), needs >= 3"
    failed = []
    for m in models:
        test = groups == m
        fit = fit_spec(spec_name, {k: v[~test] for k, v in obs.features.items()}, obs.y[~test],
                       groups=groups[~test])
        if fit.status != "fitted":
            failed.append(str(m))
            continue
        xf = {k: v[test] for k, v in obs.features.items()}
        out["fpred"][test], out["flo"][test], out["fhi"][test] = predict_interval(spec_name, fit, xf, 1 - alpha)
        xp = {k: v[test] for k, v in feats_phys.items()}
        with np.errstate(invalid="ignore"):
            out["pred"][test], out["lo"][test], out["hi"][test] = predict_interval(spec_name, fit, xp, 1 - alpha)
    return out, (f"leave-one-architecture-out: {len(failed)} fold(s) failed ({', '.join(failed)})" if failed else None)


def _framework_rows(obs, est, frame, alpha, lomo):
    t = obs.table
    y = obs.y
    notes = []
    meta = frame.drop_duplicates("profile_id").set_index("profile_id").loc[t["profile_id"]].reset_index()
    feats_phys, errors = _physics_features(obs, meta)
    with np.errstate(invalid="ignore"):
        pred, lo, hi = _predict_file(est, feats_phys, alpha)
    fpred, flo, fhi = _predict_file(est, obs.features, alpha)
    if est.status == "fitted" and lomo:
        lo_out, note = _lomo(obs, est.selected_spec, feats_phys, alpha)
        if note:
            notes.append(note)
    elif est.status == "fitted":
        lo_out = {k: np.full(len(y), np.nan) for k in ("pred", "lo", "hi", "fpred", "flo", "fhi")}
        notes.append("leave-one-architecture-out not run (--no-lomo)")
    else:
        lo_out = {"pred": pred, "lo": lo, "hi": hi, "fpred": fpred, "flo": flo, "fhi": fhi}
        notes.append("unfitted: predictions are the seed plan's fallback constants, fitted to no profile, so "
                     "the leave-one-architecture-out columns equal the in-sample ones")
    rows = pd.DataFrame({
        "framework": obs.framework,
        "status": est.status,
        "spec": est.selected_spec,
        "profile_id": t["profile_id"].to_numpy(),
        "model_id": t["model_id"].to_numpy(),
        "size_class": t["size_class"].to_numpy(),
        "params_b": t["params_b"].to_numpy(float),
        "tp": t["tp"].to_numpy(float),
        "pp": t["pp"].to_numpy(float),
        "n_gpus": obs.features["n_gpus"],
        "batch_size": obs.features["batch_size"],
        "batch_defaulted": t["batch_defaulted"].to_numpy(bool),
        "series": t["series"].to_numpy(),
        "gpu_name": _col(meta, "gpu_name"),
        "quantity": obs.observed_quantity["name"],
        "response_form": t["response_form"].to_numpy(),
        "measured_gib": y,
        "weights_measured_gib": np.where(t["weights_measured"].to_numpy(bool), obs.features["weights_gib"], np.nan),
        "weights_physics_gib": feats_phys["weights_gib"],
        "pred_gib": pred, "lower_gib": lo, "upper_gib": hi,
        "ape": ape(pred, y), "covered": covered(y, lo, hi),
        "fit_pred_gib": fpred, "fit_lower_gib": flo, "fit_upper_gib": fhi,
        "fit_ape": ape(fpred, y), "fit_covered": covered(y, flo, fhi),
        "lomo_pred_gib": lo_out["pred"], "lomo_lower_gib": lo_out["lo"], "lomo_upper_gib": lo_out["hi"],
        "lomo_ape": ape(lo_out["pred"], y), "lomo_covered": covered(y, lo_out["lo"], lo_out["hi"]),
        "lomo_fit_pred_gib": lo_out["fpred"], "lomo_fit_ape": ape(lo_out["fpred"], y),
        "lomo_fit_covered": covered(y, lo_out["flo"], lo_out["fhi"]),
        "cannot_predict": errors,
    })
    rows = rows.join(_kv_columns(obs, rows, meta, feats_phys, lo_out))
    for name, pred_b in bl.predictions(feats_phys, obs.framework).items():
        rows[f"baseline_{name}_gib"] = pred_b
        rows[f"baseline_{name}_ape"] = ape(pred_b, y)
    return rows, notes


def _kv_columns(obs, rows, meta, feats_phys, lo_out):
    """KV bytes per token (measured vs physics) and vLLM's KV pool in tokens."""
    n = len(rows)
    bpt_pred = np.full(n, np.nan)
    kv_gib = _col(meta, "kv_cache_gib", float)
    tokens = _col(meta, "kv_cache_tokens", float)
    scope = np.array([str(v) for v in _col(meta, "measured_scope")])
    n_gpu = rows["n_gpus"].to_numpy(float)
    kv_gib = np.where(scope == "sum_over_gpus", kv_gib / n_gpu, kv_gib)
    tp, pp = rows["tp"].to_numpy().astype(int), rows["pp"].to_numpy().astype(int)
    groups: dict = {}
    for i, key in enumerate(zip(rows["model_id"], (_s(v) for v in _col(meta, "dtype")),
                                (_s(v) for v in _col(meta, "kv_cache_dtype")))):
        groups.setdefault(key, []).append(i)
    for (mid, dt, kvd), idx in groups.items():
        idx = np.asarray(idx)
        arch = resolve_model(mid).architecture
        dt = dt or getattr(arch, "torch_dtype", None) or "bfloat16"
        try:
            bpt_pred[idx] = physics.kv_bytes_per_token(arch, kv_cache_dtype=kvd or "auto", dtype=dt,
                                                       tp=tp[idx], pp=pp[idx])
        except Exception:  # noqa: BLE001 - not computable: left NaN
            pass
    if obs.framework == "vllm":
        _hybrid_bytes_per_token(meta, rows, bpt_pred, kv_gib, tp)
    with np.errstate(invalid="ignore", divide="ignore"):
        bpt_meas = np.where((tokens > 0) & (kv_gib > 0), kv_gib * _GIB / tokens, np.nan)
    out = {"kv_bpt_measured": bpt_meas, "kv_bpt_pred": bpt_pred, "kv_bpt_ape": ape(bpt_pred, bpt_meas)}
    nan = np.full(n, np.nan)
    if obs.framework == "vllm":
        G = _col(meta, "gpu_memory_gib", float)
        u = _col(meta, "gpu_memory_utilization", float)
        tok = np.where(tokens > 0, tokens, np.nan)
        for prefix, (p, lo, hi) in (("kv_pool", (rows["pred_gib"], rows["lower_gib"], rows["upper_gib"])),
                                    ("lomo_kv_pool", (lo_out["pred"], lo_out["lo"], lo_out["hi"]))):
            t_pred = _pool_tokens(u, G, p, bpt_pred)
            t_lo = _pool_tokens(u, G, hi, bpt_pred)   # more non-KV memory: fewer tokens
            t_hi = _pool_tokens(u, G, lo, bpt_pred)
            out[f"{prefix}_tokens_pred"] = t_pred
            out[f"{prefix}_tokens_lower"] = t_lo
            out[f"{prefix}_tokens_upper"] = t_hi
            out[f"{prefix}_ape"] = ape(t_pred, tok)
            out[f"{prefix}_covered"] = covered(tok, t_lo, t_hi)
        out["kv_pool_tokens_measured"] = tok
    else:
        for prefix in ("kv_pool", "lomo_kv_pool"):
            for suf in ("tokens_pred", "tokens_lower", "tokens_upper", "ape", "covered"):
                out[f"{prefix}_{suf}"] = nan
        out["kv_pool_tokens_measured"] = nan
    return pd.DataFrame(out, index=rows.index)


def _hybrid_bytes_per_token(meta, rows, bpt_pred, kv_gib, tp):
    """For full + sliding-window models under vLLM's hybrid manager, replace the full-rate bytes
    per token by the pool bytes per printed token (:func:`fitting.physics.vllm.vllm_pool_tokens`
    at the printed pool: the count is linear in the pool, so the rate carries to other pools)."""
    mml, mbt = _col(meta, "max_model_len", float), _col(meta, "max_num_batched_tokens", float)
    versions, engines = _col(meta, "framework_version"), _col(meta, "engine")
    dtypes, kvds = _col(meta, "dtype"), _col(meta, "kv_cache_dtype")
    for i, mid in enumerate(rows["model_id"]):
        if not (np.isfinite(mml[i]) and np.isfinite(mbt[i]) and kv_gib[i] > 0) or _s(engines[i]) == "v0":
            continue
        arch = resolve_model(mid).architecture
        if not arch.num_sliding_layers:
            continue
        layout = vllm_hybrid_kv_layout(arch, version=_s(versions[i]), kv_cache_dtype=_s(kvds[i]) or "auto",
                                       dtype=_s(dtypes[i]) or getattr(arch, "torch_dtype", None) or "bfloat16",
                                       tp=int(tp[i]))
        if layout is None:
            continue
        pool = float(kv_gib[i]) * _GIB
        t = float(vllm_pool_tokens(layout, pool, max_model_len=int(mml[i]), max_num_batched_tokens=int(mbt[i]),
                                   version=_s(versions[i])))
        if t > 0:
            bpt_pred[i] = pool / t


def _pool_tokens(u, G, non_kv_gib, bpt):
    """vLLM's pool: floor((u G - non_kv) GiB / bytes per token / block) * block tokens."""
    with np.errstate(invalid="ignore", divide="ignore"):
        free = np.maximum(np.asarray(u, float) * np.asarray(G, float) - np.asarray(non_kv_gib, float), 0.0) * _GIB
        return np.floor(free / (np.asarray(bpt, float) * _VLLM_BLOCK)) * _VLLM_BLOCK


# ----------------------------------------------------------------------------- JSON/text
def _records(rows):
    if rows is None or len(rows) == 0:
        return []
    return [{k: v for k, v in r.items()} for r in rows.to_dict(orient="records")]


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if obj is None or isinstance(obj, str):
        return obj
    try:
        if pd.isna(obj):
            return None
    except (TypeError, ValueError):
        pass
    return str(obj)


def render_text(doc: dict) -> str:
    """The validation report as plain text, rendered from :meth:`ValidationResult.to_dict`."""

    return render(doc)


# ----------------------------------------------------------------------------------- CLI
def render_calibration(doc: dict) -> str:
    """Text of the reliability curves (``--calibration``)."""
    lines = ["", "Calibration (leave-one-architecture-out, measured-weights view): nominal level -> observed "
                 "coverage [binomial 95% band]"]
    for fw, info in sorted(doc["frameworks"].items()):
        cal = info.get("calibration")
        if not cal:
            continue
        if cal.get("status") != "ok":
            lines.append(f"  {fw}: {cal.get('status')}")
            continue
        cells = [f"{lv:.0%} -> {c:.1%} [{lo:.1%}, {hi:.1%}]{'' if ok else ' OUTSIDE'}"
                 for lv, c, lo, hi, ok in zip(cal["levels"], cal["coverage"], cal["band_lower"], cal["band_upper"],
                                               cal["within_band"])]
        lines.append(f"  {fw} (n {cal['n']}): " + "; ".join(cells))
    return "\n".join(lines) + "\n"


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m fitting.validate",
        description="Accuracy of the fitted estimator on the profiles: per-profile prediction, "
                    "interval and absolute percentage error of the quantity each framework "
                    "measures; MAPE, median and p90 APE and interval coverage by size class, "
                    "in-sample and leave-one-architecture-out, next to today's rules of thumb. With "
                    "--max-error, exit 1 when a size class exceeds it (the CI gate).")
    p.add_argument("--profiles", default="profiles", help="profile folder, searched recursively (default: profiles/)")
    p.add_argument("--params", default="fitted_params",
                   help="coefficient folder with <framework>/latest.json (default: fitted_params/)")
    p.add_argument("--max-error", type=float, default=None, metavar="PCT",
                   help="largest acceptable MAPE of any gated size class, percent (e.g. 10); exit 1 above it")
    p.add_argument("--scheme", choices=sorted(SCHEMES), default="lomo",
                   help="which predictions the gate checks (default: lomo, leave-one-architecture-out, estimator view)")
    p.add_argument("--include-unfitted", action="store_true",
                   help="also gate frameworks without a fit (their seed-plan fallback constants)")
    p.add_argument("--alpha", type=float, default=0.10,
                   help="prediction intervals at 1 - alpha (default 0.10: 90%%)")
    p.add_argument("--framework", action="append", help="validate only this framework (repeatable)")
    p.add_argument("--no-lomo", action="store_true", help="skip leave-one-architecture-out (no refits)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON (rows included)")
    p.add_argument("--calibration", action="store_true",
                   help="also print the reliability curve: nominal level (50/80/90/95%%) against observed "
                        "leave-one-architecture-out coverage per fitted framework, with the binomial 95%% band")
    p.add_argument("--out", metavar="FILE", help="also write the JSON result to FILE (atomically)")
    return p


def _write_json(path, doc):
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")


def main(argv=None) -> int:
    """Command line entry point; returns the exit status (0 pass, 1 gate failed, 2 bad input)."""
    args = _parser().parse_args(argv)
    if not 0.0 < args.alpha < 1.0:
        print(f"error: --alpha must lie in (0, 1), got {args.alpha}", file=sys.stderr)
        return 2
    if args.max_error is not None and not args.max_error > 0:
        print(f"error: --max-error must be a positive percentage, got {args.max_error}", file=sys.stderr)
        return 2
    if args.max_error is not None and args.no_lomo and args.scheme.startswith("lomo"):
        print(f"error: the gate's scheme {args.scheme} needs leave-one-architecture-out: drop --no-lomo or choose "
              "--scheme in_sample", file=sys.stderr)
        return 2

    try:
        res = validate(args.profiles, args.params, alpha=args.alpha, lomo=not args.no_lomo,
                       frameworks=args.framework)
    except (FileNotFoundError, CoefficientFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    doc = res.to_dict(max_error=args.max_error, scheme=args.scheme, include_unfitted=args.include_unfitted)
    if args.out:
        _write_json(args.out, doc)
    if args.json:
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(doc))
        if args.calibration:
            sys.stdout.write(render_calibration(doc))
    gate = doc.get("gate")
    if gate is not None and not gate["passed"]:
        if args.json:  # the text report already names them

            sys.stderr.write(render_gate(gate))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
