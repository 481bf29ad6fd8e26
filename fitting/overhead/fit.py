r"""Fit every overhead spec of one framework: identifiability, NLS, outliers, grouped CV.

:func:`fit_framework` takes the :class:`fitting.overhead.observations.Observations` of one
framework and returns a :class:`FrameworkFit`:

1. **Enough data?** A framework needs at least :data:`MIN_PROFILES` usable profiles of at
   least :data:`MIN_MODELS` distinct architectures (the groups of the leave-one-architecture-out
   cross-validation: two checkpoints of one architecture count once). Below that it gets status ``unfitted`` and the
   seed plan's hand-set constants (:data:`SEED_PLAN_CONSTANTS`) as a fallback, with a
   deliberately wide residual scale (:data:`FALLBACK_RESIDUAL_SCALE`, log units, on
   :data:`FALLBACK_DF` degrees of freedom: a 90 % interval of about x/÷ 2). Ten profiles
   leave at least five residual degrees of freedom for the five-parameter specs, and
   leave-one-architecture-out cross-validation needs at least two models to train on.
2. **Identifiability** (:func:`identify`): the regressor of each parameter (the column
   ``spec.regressors(features)[name]``) is checked in the spec's order; a parameter whose
   regressor is zero in every profile, does not vary, or is a linear combination of the
   regressors before it (e.g. ``multi_gpu`` when every profile is tp = 1, ``batch_scaling``
   when every profile has the same batch size) is *fixed at 0 and flagged not
   identified*; it gets no standard error. ``lambda`` of ``boxcox`` is identified only when
   ``batch_scaling`` is and batch size takes at least three distinct values.
3. **Fit** with :class:`fitting.stats.nls.NLSModel` in ``log`` error mode (memory errors scale
   with size: relative errors, positive intervals), non-negative bounds from the spec, the
   analytic Jacobian, and start values from a bounded linear least-squares fit in
   relative error (all specs are linear in every parameter but ``lambda``; ``boxcox`` is
   started from several ``lambda`` values and the best fit kept).
4. **Outlier screening** (:func:`screen_outliers`): internally studentized residuals
   :math:`t_i = r_i / (s\sqrt{1-h_{ii}})` and Cook's distances
   :math:`D_i = t_i^2 h_{ii} / (k (1 - h_{ii}))` from the linearisation at the optimum
   (log working residuals); a profile is flagged when :math:`|t_i| > 3` or
   :math:`D_i > 4/n`. Flagged profiles are listed; the fit drops them only on request
   (``drop_outliers=True``).
5. **Grouped cross-validation** (:func:`cross_validate`): leave one *model* out, refit
   (identifiability decided again on the training rows), predict the held-out model's
   profiles: absolute percentage error of the response, median APE, and coverage of the
   90 % prediction interval, overall and per size class against the seed plan's targets.
6. **Selection**: the spec with the lowest CV MAPE; specs within :data:`CV_TIE_TOL` of it
   are tied and the lowest AIC (then BIC) wins. Without CV, the lowest AIC. ``seed`` is
   always fitted and reported.

For vLLM the CUDA-graph memory, where reported, is fitted as its own small term
(:data:`fitting.overhead.specs.CUDA_GRAPH`) on the profiles that report it.

Note on the seed plan's vLLM constants: its "baseline 14 GB" is an artefact of vLLM's
preallocation (the KV pool takes ``gpu_memory_utilization`` of the card whatever the
model), not overhead; it is used only as the documented fallback when vLLM has too little
data, and the fitted non-KV response replaces it as soon as there is data.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

from fitting.overhead.measurement import UNIT_BASE_FACTORS, UNIT_BASE_MIN_LR, decide_unit_base, unit_base_loglik
from fitting.overhead.observations import (
    SIZE_CLASS_ORDER,
    SIZE_CLASS_TARGETS_MAPE,
    Observations,
)
from fitting.overhead.prediction import ERROR_MODEL_KIND, ErrorModel, get_prediction
from fitting.overhead.specs import SPECS, OverheadSpec, get_spec
from fitting.stats.mixed import fit_random_intercept
from fitting.stats.nls import NLSModel, Param

__all__ = [
    "SpecFit",
    "FrameworkFit",
    "identify",
    "fit_spec",
    "predict_interval",
    "screen_outliers",
    "cross_validate",
    "nested_cross_validate",
    "coverage_band",
    "fit_framework",
    "fallback_fit",
    "MIN_PROFILES",
    "MIN_MODELS",
    "CANDIDATE_SPECS",
    "FRAMEWORK_SPECS",
    "candidate_specs",
    "SEED_PLAN_CONSTANTS",
    "fit_with_unit_bases",
    "decide_source_unit_base",
]

#: A framework with fewer usable profiles than this is not fitted (fallback instead).
MIN_PROFILES = 10
#: ... or with fewer distinct architectures (cross-validation groups) than this.
MIN_MODELS = 3
#: Candidate overhead specs, in the order they are fitted and reported.
CANDIDATE_SPECS = ("seed", "boxcox", "physical")
#: Specs from one framework's own mechanics, candidates for that framework only.
FRAMEWORK_SPECS = {"vllm": ("vllm", "vllm_fabric"), "sglang": ("sglang",)}


def candidate_specs(framework: str) -> tuple:
    """The candidate specs of a framework: the generic ones and its own."""
    return CANDIDATE_SPECS + FRAMEWORK_SPECS.get(framework, ())
#: Error mode of every fit (see fitting.stats.nls).
ERROR_MODE = "log"
#: Specs whose CV MAPE is within this (fraction) of the best are tied; AIC decides.
CV_TIE_TOL = 0.005
#: Nominal level of the prediction intervals whose coverage CV checks.
CV_INTERVAL_LEVEL = 0.90
#: Outlier flags: |studentized residual| above this, or Cook's distance above 4/n.
OUTLIER_T = 3.0
#: Relative tolerance below which a regressor counts as a combination of earlier ones.
_COLLINEAR_RTOL = 1e-6
#: Start values of lambda tried for boxcox.
_LAMBDA_STARTS = (0.0, 0.5, 1.0)
#: Solver tolerance (ftol = xtol = gtol) for the overhead fits.
_TOL = 1e-10

#: The seed plan's hand-set constants (params of the ``seed`` spec). The vLLM "baseline
#: 14 GB" is a preallocation artefact (see the module docstring); "15 % per extra GPU" is
#: read as multi_gpu = 0.15 on (W/n)(n-1); "0.2 % x log2 batch" as batch_scaling = 0.002.
SEED_PLAN_CONSTANTS = {
    "vllm": {"baseline_gib": 14e9 / 2**30, "proportional": 0.05, "multi_gpu": 0.15,
             "batch_scaling": 0.002},
    "default": {"baseline_gib": 0.0, "proportional": 0.08, "multi_gpu": 0.0, "batch_scaling": 0.0},
}
_SEED_PLAN_TEXT = {
    "vllm": "vLLM: baseline 14 GB + 5% + 15% per extra GPU + 0.2% x log2 batch (the 14 GB is "
            "vLLM's KV preallocation seen by nvidia-smi, not overhead: an artefact)",
    "default": "generic: fixed 8% of weights + KV + activations",
}
#: Residual scale (log units) and df of the fallback: deliberately wide intervals.
FALLBACK_RESIDUAL_SCALE = 0.35
FALLBACK_DF = 5


# --------------------------------------------------------------------------- containers
@dataclass
class SpecFit:
    """One spec fitted to one framework's data (everything the coefficient file holds).

    Arrays are in the spec's parameter order; memory in GiB; ``residual_scale`` is the
    residual standard deviation in log units (``error_mode``).
    """

    spec: str
    status: str
    param_names: tuple
    estimate: np.ndarray
    se: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    lower_bound: np.ndarray
    upper_bound: np.ndarray
    identified: np.ndarray
    at_bound: np.ndarray
    not_identified_reason: dict
    cov: np.ndarray
    residual_scale: float = math.nan
    df_resid: int = 0
    nobs: int = 0
    rss: float = math.nan
    aic: float = math.nan
    bic: float = math.nan
    loglike: float = math.nan
    converged: bool = False
    message: str = ""
    warnings: list = field(default_factory=list)
    error_mode: str = ERROR_MODEL_KIND
    fitted_gib: np.ndarray | None = None
    outliers: list = field(default_factory=list)
    cv: dict | None = None
    data_ranges: dict | None = None
    results: object = None
    #: standard deviation of the architecture effect (log units); None = not estimable / no groups
    between_scale: float | None = None
    #: "estimated" (REML), "conservative" (not estimable) or "none" (fitted without groups)
    between_rule: str = "none"
    conservative_scale: float | None = None
    #: degrees of freedom for inference: architectures - parameters (rows - parameters without groups)
    df: float = 0.0
    n_groups: int = 0
    variance_note: str = ""

    def param_dict(self) -> dict:
        """``{name: estimate}``."""
        return {n: float(v) for n, v in zip(self.param_names, self.estimate)}

    @property
    def error_model(self) -> ErrorModel:
        """The error model the prediction path uses (:mod:`fitting.overhead.prediction`)."""
        return ErrorModel(within_scale=float(self.residual_scale), between_scale=self.between_scale,
                          df=float(self.df if self.df > 0 else max(self.df_resid, 1)), n_groups=int(self.n_groups),
                          between_rule=self.between_rule, conservative_scale=self.conservative_scale,
                          note=self.variance_note)


@dataclass
class FrameworkFit:
    """All fits of one framework."""

    framework: str
    status: str
    observations: Observations
    specs: dict
    selected_spec: str
    selection: dict
    cuda_graph: SpecFit | None = None
    fallback: dict | None = None
    reason: str = ""
    dropped_outliers: list = field(default_factory=list)
    options: dict = field(default_factory=dict)
    #: accuracy of the whole procedure (selection nested in the folds): what we report
    nested_cv: dict | None = None
    #: sources with an unverified or inferred "MB"/"GB" base and what the data said
    #: (:mod:`fitting.overhead.unit_bases`)
    unit_bases: list = field(default_factory=list)


# ------------------------------------------------------------------------ identifiability
def _column(v, n):
    return np.broadcast_to(np.asarray(v, dtype=float), (n,))


def identify(spec: OverheadSpec, features: dict) -> dict:
    """Which parameters the data identify.

    Parameters
    ----------
    spec : OverheadSpec
    features : dict of ndarray
        Features of the fitting rows (GiB per GPU).

    Returns
    -------
    dict
        ``{name: None}`` for identified parameters, ``{name: reason}`` for the others.
    """
    n = len(np.asarray(features["batch_size"]))
    reg = spec.regressors(features)
    out: dict = {}
    basis = np.zeros((n, 0))
    accepted: list[str] = []
    for name in spec.param_names:
        if name == "lambda":
            continue
        col = _column(reg[name], n)
        norm = float(np.linalg.norm(col))
        if n == 0 or norm == 0.0:
            out[name] = "not identified: its regressor is zero in every profile"
            continue
        if basis.shape[1]:
            coef, *_ = np.linalg.lstsq(basis, col, rcond=None)
            resid = float(np.linalg.norm(col - basis @ coef))
        else:
            resid = norm
        if resid <= _COLLINEAR_RTOL * norm:
            what = ("does not vary" if np.ptp(col) == 0 else
                    f"is a linear combination of {', '.join(accepted)}")
            out[name] = f"not identified: its regressor {what} in these profiles"
            continue
        out[name] = None
        accepted.append(name)
        basis = np.column_stack([basis, col / norm])
    if "lambda" in spec.param_names:
        k = len(np.unique(np.asarray(features["batch_size"], dtype=float)))
        if out.get("batch_scaling") is not None:
            out["lambda"] = "not identified: the batch term is not identified"
        elif k < 3:
            out["lambda"] = f"not identified: batch size takes {k} distinct value(s) (needs >= 3)"
        else:
            out["lambda"] = None
    return {name: out[name] for name in spec.param_names}


# ------------------------------------------------------------------------------- fitting
def _model_func(spec):
    def func(x, p):
        return spec.uncertain_part(x, p)

    def jac(x, p):
        return spec.jacobian(x, p)

    return func, jac


def _linear_start(spec, x, u, p_template, free):
    """Bounded linear LS in relative error of the uncertain part ``u`` for the linear
    parameters at ``p_template``."""
    lin = np.array([name != "lambda" for name in spec.param_names]) & free
    p = p_template.copy()
    if not lin.any():
        return p
    J = np.asarray(spec.jacobian(x, p), dtype=float)
    fixed_part = spec.uncertain_part(x, np.where(lin, 0.0, p))
    A = J[:, lin] / u[:, None]
    b = (u - fixed_part) / u
    lb = np.array([ps.lower for ps in spec.params])[lin]
    ub = np.array([ps.upper for ps in spec.params])[lin]
    try:
        sol = optimize.lsq_linear(A, b, bounds=(lb, ub), method="bvls")
        p[lin] = np.clip(sol.x, lb, ub)
    except (ValueError, np.linalg.LinAlgError):
        pass
    return p


def _feasible(spec, x, p):
    h = spec.uncertain_part(x, p)
    return bool(np.all(np.isfinite(h)) and np.all(h > 0))


def _params_of(spec, p_start, free):
    return [Param(ps.name, float(v), min=ps.lower, max=ps.upper, unit=ps.unit,
                  description=ps.description, vary=bool(fr))
            for ps, v, fr in zip(spec.params, p_start, free)]


def _nls(spec, x, u, p_start, free):
    func, jac = _model_func(spec)
    model = NLSModel(func, _params_of(spec, p_start, free), jac=jac, name=spec.name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit(x, u, error_mode=ERROR_MODE, tol=_TOL)
    return res, [str(w.message) for w in caught]


def _random_intercept(spec, x, u, groups, p_start, free):
    """GLS with a random intercept per architecture on log(u), REML variance components."""
    model = NLSModel(lambda xx, q: spec.uncertain_part(xx, q), _params_of(spec, p_start, free), name=spec.name)

    def log_h(xx, q):
        return np.log(np.maximum(spec.uncertain_part(xx, q), 1e-300))

    def log_jac(xx, q):
        h = np.maximum(spec.uncertain_part(xx, q), 1e-300)
        return np.asarray(spec.jacobian(xx, q), dtype=float) / h[:, None]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rif = fit_random_intercept(model, x, np.log(u), groups, working_func=log_h, working_jac=log_jac,
                                   p0=p_start, tol=_TOL)
    return rif, [str(w.message) for w in caught]


def fit_spec(spec, features: dict, y, *, groups=None, fixed: dict | None = None, check_identified: bool = True,
             alpha: float = 0.05, extra_starts=(), lambda_starts=_LAMBDA_STARTS) -> SpecFit:
    """Fit one spec with identifiability checks, the error on the uncertain part only.

    The response is ``y = E + U`` with ``E`` exact (weights + workload KV,
    :meth:`OverheadSpec.exact_offset`) and ``U = h(theta; x)`` (activations + overhead, or
    the whole term) fitted in log error mode. With ``groups`` (architecture per row) the
    errors get a random intercept per architecture (:mod:`fitting.stats.mixed`, REML) and
    inference uses ``n_architectures - k`` degrees of freedom; without, independent errors.

    Parameters
    ----------
    spec : OverheadSpec or str
    features : dict of ndarray
        Features (GiB per GPU), one entry per observation.
    y : array_like
        Observed response, GiB per GPU (> the exact part ``E``).
    groups : array_like, optional
        Architecture label per row (the fold key of :attr:`Observations.groups`).
    fixed : dict, optional
        ``{name: value}`` parameters held fixed (e.g. a null hypothesis); they count as
        not estimated but not as "not identified".
    check_identified : bool
        Fix parameters whose regressors do not identify them at 0 (see :func:`identify`).
    alpha : float
        Level of the parameter intervals (``1 - alpha``).
    extra_starts : sequence of array_like
        Further start vectors (all parameters, spec order) tried besides the default
        ones; the fit with the smallest RSS among the converged ones is kept.
    lambda_starts : sequence of float
        Start values of ``lambda`` (``boxcox``), each with linear start values for the
        other parameters.

    Returns
    -------
    SpecFit
    """
    spec = get_spec(spec) if isinstance(spec, str) else spec
    y = np.asarray(y, dtype=float)
    u = y - np.asarray(spec.exact_offset(features), dtype=float)
    names = spec.param_names
    k = len(names)
    fixed = dict(fixed or {})
    reasons = identify(spec, features) if check_identified else dict.fromkeys(names)
    p = np.array([ps.start for ps in spec.params], dtype=float)
    free = np.ones(k, dtype=bool)
    for i, name in enumerate(names):
        if name in fixed:
            p[i], free[i] = float(fixed[name]), False
        elif reasons[name] is not None:
            p[i], free[i] = 0.0, False
    lb = np.array([ps.lower for ps in spec.params])
    ub = np.array([ps.upper for ps in spec.params])
    if y.size <= int(free.sum()):
        return _failed(spec, reasons, fixed, f"too few observations ({y.size}) for {int(free.sum())} free parameters")
    if np.any(~(u > 0)):
        return _failed(spec, reasons, fixed, f"{int(np.sum(~(u > 0)))} observation(s) at or below the exact part "
                                             "(weights + workload KV): the uncertain part must be positive")

    lam_i = names.index("lambda") if "lambda" in names else None
    lam_starts = (tuple(lambda_starts) if lam_i is not None and free[lam_i] else (None,))
    starts = []
    for lam in lam_starts:
        p0 = p.copy()
        if lam is not None:
            p0[lam_i] = lam
        p0 = _linear_start(spec, features, u, p0, free)
        p0[free] = np.clip(p0[free], lb[free], ub[free])
        if not _feasible(spec, features, p0):
            p0 = p.copy() if lam is None else np.where(np.arange(k) == lam_i, lam, p)
        starts.append(p0)
    for extra in tuple(extra_starts) + tuple(getattr(spec, "start_grid", ()) or ()):
        p0 = np.where(free, np.clip(np.asarray(extra, dtype=float), lb, ub), p)
        starts.append(p0)
    best, best_warn, found = None, [], []
    for p0 in starts:
        if not _feasible(spec, features, p0):
            continue
        try:
            res, msgs = _nls(spec, features, u, p0, free)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
            best_warn = [f"fit failed: {exc}"]
            continue
        found.append((res, msgs))
        if best is None or (res.converged, -res.rss) > (best.converged, -best.rss):
            best, best_warn = res, msgs
    if best is None:
        return _failed(spec, reasons, fixed, "; ".join(best_warn) or "no feasible start values")
    if groups is None:
        out = _from_results(spec, best, reasons, fixed, best_warn, alpha, df=best.df_resid)
        out.between_rule, out.n_groups = "none", 0
        out.variance_note = "independent errors (fitted without architecture groups)"
        return out
    groups = np.asarray(groups)
    # the random-intercept fit starts from the best independent-errors fit; where it stops
    # short of a stationary point (vLLM's max of two stages makes the problem nearly flat in
    # some directions), it is retried from the other independent-errors solutions, best first
    order = [best] + [r for r, _ in sorted(found, key=lambda t: (not t[0].converged, t[0].rss))
                      if r is not best][:4]
    rif = None
    for start in order:
        try:
            cand, msgs = _random_intercept(spec, features, u, groups, start.params.to_numpy(dtype=float), free)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
            if rif is None and start is order[-1]:
                return _failed(spec, reasons, fixed, f"random-intercept fit failed: {exc}")
            continue
        if rif is None or (cand.results.converged and not rif.results.converged):
            rif, rif_msgs = cand, msgs
        if rif.results.converged:
            break
    if rif is None:
        return _failed(spec, reasons, fixed, "random-intercept fit failed from every start")
    msgs = rif_msgs
    vc = rif.components
    res = rif.results
    df = vc.df
    out = _from_results(spec, res, reasons, fixed, best_warn + msgs, alpha, df=df,
                        scale=vc.sigma2, fitted=spec.predict_response(features, res.params.to_numpy(dtype=float)))
    out.n_groups = vc.n_groups
    if vc.tau2 is None:
        out.between_rule, out.between_scale = "conservative", None
        out.conservative_scale = math.sqrt(best.scale) if best.df_resid > 0 else FALLBACK_RESIDUAL_SCALE
        out.variance_note = (vc.note + f"; conservative rule: the independent-errors residual scale "
                             f"{out.conservative_scale:.4g} stands in for it")
    else:
        out.between_rule, out.between_scale = "estimated", math.sqrt(vc.tau2)
        out.variance_note = vc.note or f"REML over {vc.n_groups} architectures"
    if not rif.converged:
        out.warnings.append(f"variance components did not settle in {rif.iterations} GLS/REML iterations")
    return out


def _failed(spec, reasons, fixed, message):
    k = len(spec.params)
    nan = np.full(k, math.nan)
    return SpecFit(spec=spec.name, status="failed", param_names=spec.param_names,
                   estimate=nan.copy(), se=nan.copy(), ci_lower=nan.copy(), ci_upper=nan.copy(),
                   lower_bound=np.array([ps.lower for ps in spec.params]),
                   upper_bound=np.array([ps.upper for ps in spec.params]),
                   identified=np.zeros(k, dtype=bool), at_bound=np.zeros(k, dtype=bool),
                   not_identified_reason={n: r for n, r in reasons.items() if r is not None},
                   cov=np.zeros((k, k)), message=message)


def _from_results(spec, res, reasons, fixed, msgs, alpha, *, df, scale=None, fitted=None):
    names = spec.param_names
    est = res.params.to_numpy(dtype=float)
    ident_engine = res.identified.to_numpy(dtype=bool)
    free = res.vary.to_numpy(dtype=bool)
    why = {n: r for n, r in reasons.items() if r is not None and n not in fixed}
    for i, n in enumerate(names):
        if free[i] and not ident_engine[i] and n not in why:
            why[n] = "not identified: the Jacobian is rank deficient in this direction"
    identified = ident_engine & free
    cov = res.cov_params().to_numpy(dtype=float)
    cov = np.where(np.isfinite(cov), cov, 0.0)
    se = np.sqrt(np.diag(cov))
    se = np.where(identified & np.isfinite(res.bse.to_numpy(dtype=float)), se, math.nan)
    t = stats.t.ppf(1 - alpha / 2, df) if df > 0 else math.nan
    lb = np.array([ps.lower for ps in spec.params])
    ub = np.array([ps.upper for ps in spec.params])
    tol = 1e-9 * np.maximum(1.0, np.abs(est))
    at_lb = free & (np.abs(est - lb) <= tol)
    at_ub = free & (np.abs(est - ub) <= tol)
    est = np.where(at_lb, lb, np.where(at_ub, ub, est))  # snap: no 1e-30 rounding noise
    at_bound = at_lb | at_ub
    lo = np.clip(est - t * se, lb, ub)
    hi = np.clip(est + t * se, lb, ub)
    scale = res.scale if scale is None else scale
    if fitted is None:
        fitted = np.asarray(res.fittedvalues, dtype=float) + np.asarray(spec.exact_offset(res.x), dtype=float)
    return SpecFit(
        spec=spec.name, status="fitted" if res.converged else "not converged",
        param_names=names, estimate=est, se=se, ci_lower=lo, ci_upper=hi,
        lower_bound=lb, upper_bound=ub, identified=identified, at_bound=at_bound,
        not_identified_reason=why, cov=cov,
        residual_scale=math.sqrt(scale) if res.df_resid > 0 else math.nan,
        df_resid=int(res.df_resid), nobs=int(res.nobs), rss=float(res.rss),
        aic=float(res.aic), bic=float(res.bic), loglike=float(res.loglike),
        converged=bool(res.converged), message=str(res.message), warnings=list(msgs),
        fitted_gib=np.asarray(fitted, dtype=float), results=res, df=float(df),
    )


def predict_interval(spec, fit: SpecFit, features: dict, level: float = CV_INTERVAL_LEVEL):
    """Prediction and ``level`` prediction interval of a new architecture's measurement.

    A thin view of the one prediction path, :func:`fitting.overhead.prediction.get_prediction`.

    Returns
    -------
    (pred, lower, upper) : tuple of ndarray
        GiB per GPU.
    """
    spec = get_spec(spec) if isinstance(spec, str) else spec
    pr = get_prediction(spec, fit.estimate, fit.cov, fit.error_model, features, identified=fit.identified)
    lo, hi = pr.conf_int(1.0 - level, obs=True)
    return pr.predicted, lo, hi


# ------------------------------------------------------------------------------ outliers
def screen_outliers(spec, fit: SpecFit, features: dict, y, profile_ids) -> list:
    """Studentized residuals and Cook's distances at the optimum; the flagged profiles.

    Returns
    -------
    list of dict
        ``{"profile_id", "studentized_resid", "cooks_d", "leverage"}`` for each profile
        with ``|t| > OUTLIER_T`` or ``D > 4/n``, sorted by ``|t|`` descending.
    """
    spec = get_spec(spec) if isinstance(spec, str) else spec
    y = np.asarray(y, dtype=float)
    n = y.size
    idx = np.flatnonzero(fit.identified)
    if fit.status != "fitted" or idx.size == 0 or fit.df_resid <= 0:
        return []
    f = np.asarray(spec.uncertain_part(features, fit.estimate), dtype=float)
    u = y - np.asarray(spec.exact_offset(features), dtype=float)
    r = np.log(np.where(u > 0, u, np.nan)) - np.log(f)
    J = np.asarray(spec.jacobian(features, fit.estimate), dtype=float)[:, idx] / f[:, None]
    norms = np.linalg.norm(J, axis=0)
    J = J[:, norms > 0] / norms[norms > 0]
    if J.shape[1] == 0 or not np.all(np.isfinite(J)):
        return []
    u, s, _ = np.linalg.svd(J, full_matrices=False)
    u = u[:, s > 1e-12 * s[0]]
    h = np.clip(np.sum(u**2, axis=1), 0.0, 1.0 - 1e-12)
    s2 = fit.residual_scale**2 + (fit.between_scale or 0.0) ** 2  # a row's total residual variance
    t = r / np.sqrt(s2 * (1.0 - h))
    d = t**2 * h / (u.shape[1] * (1.0 - h))
    flag = (np.abs(t) > OUTLIER_T) | (d > 4.0 / n)
    out = [{"profile_id": str(profile_ids[i]), "studentized_resid": float(t[i]),
            "cooks_d": float(d[i]), "leverage": float(h[i])} for i in np.flatnonzero(flag)]
    return sorted(out, key=lambda o: (-abs(o["studentized_resid"]), o["profile_id"]))


# ------------------------------------------------------------------------------------ CV
def coverage_band(n: int, level: float = CV_INTERVAL_LEVEL, conf: float = 0.95):
    """The central ``conf`` binomial acceptance band of the observed coverage of ``n``
    intervals at nominal ``level``: ``(lower, upper)`` fractions (None for n = 0)."""
    if n <= 0:
        return None
    lo = stats.binom.ppf((1 - conf) / 2, n, level) / n
    hi = stats.binom.isf((1 - conf) / 2, n, level) / n
    return float(lo), float(hi)


def _metrics(ape, covered, sizes=None):
    ape = np.asarray(ape, dtype=float)
    ok = np.isfinite(ape)
    if not ok.any():
        return {"n": 0, "mape": None, "median_ape": None, "coverage_90": None}
    cov = float(np.mean(np.asarray(covered)[ok]))
    band = coverage_band(int(ok.sum()))
    out = {"n": int(ok.sum()), "mape": float(np.mean(ape[ok])),
           "median_ape": float(np.median(ape[ok])), "p90_ape": float(np.percentile(ape[ok], 90)),
           "coverage_90": cov, "coverage_band_95": list(band),
           "coverage_within_band": bool(band[0] <= cov <= band[1])}
    if sizes is not None:
        out["n_models"] = int(len(set(np.asarray(sizes)[ok])))
    return out


def _fold_predictions(spec, obs: Observations, folds):
    """Leave-one-architecture-out predictions of one spec: (pred, lower, upper, failed folds)."""
    groups = obs.groups
    y = obs.y
    n = y.size
    pred, lo, hi = (np.full(n, math.nan) for _ in range(3))
    failed = []
    for m in folds:
        test = groups == m
        train = ~test
        tf = {k: v[train] for k, v in obs.features.items()}
        fit = fit_spec(spec, tf, y[train], groups=groups[train])
        if fit.status != "fitted":
            failed.append(str(m))
            continue
        xf = {k: v[test] for k, v in obs.features.items()}
        pred[test], lo[test], hi[test] = predict_interval(spec, fit, xf)
    return pred, lo, hi, failed


def _cv_summary(obs, pred, lo, hi, failed, base):
    y = obs.y
    groups = obs.groups
    ape = np.abs(pred - y) / y
    covered = (y >= lo) & (y <= hi)
    out = {**base, "status": "ok", "n_folds": len(set(groups)), "n_failed_folds": len(failed),
           "failed_folds": failed, **_metrics(ape, covered, groups)}
    by = {}
    classes = obs.table["size_class"].to_numpy()
    for c in [c for c in SIZE_CLASS_ORDER if c in set(classes)]:
        sel = classes == c
        met = _metrics(ape[sel], covered[sel], groups[sel])
        target = SIZE_CLASS_TARGETS_MAPE.get(c)
        met["target_mape"] = target
        met["meets_target"] = (None if target is None or met["mape"] is None
                               else bool(met["mape"] < target))
        by[c] = met
    out["by_size_class"] = by
    out["predictions"] = {"pred_gib": pred, "lower_gib": lo, "upper_gib": hi}
    return out


def cross_validate(spec, obs: Observations) -> dict:
    """Leave-one-architecture-out cross-validation of one spec.

    Folds are :attr:`Observations.groups`: profiles whose architectures are identical
    (every memory-relevant ``Architecture`` field equal) form one fold, so that e.g.
    Llama-3-8B and Llama-3.1-8B are held out together. Each fold is fitted with the
    random-intercept error model and predicted with the one prediction path (a new
    architecture's interval).

    Returns
    -------
    dict
        ``scheme, n_folds, n_failed_folds, mape, median_ape, p90_ape, coverage_90,
        coverage_band_95, coverage_within_band, n, n_models`` and ``by_size_class`` (same
        metrics per class with ``target_mape`` and ``meets_target``). Fractions, not percent.
        Also ``predictions`` (per row ``pred_gib``, ``lower_gib``, ``upper_gib``; not written
        to coefficient files).
    """
    spec = get_spec(spec) if isinstance(spec, str) else spec
    folds = sorted(set(obs.groups))
    base = {"scheme": "leave-one-architecture-out", "interval_level": CV_INTERVAL_LEVEL}
    if len(folds) < 3:
        return {**base, "status": f"not run: {len(folds)} distinct architecture(s), needs >= 3",
                "mape": None, "median_ape": None, "coverage_90": None, "by_size_class": {}}
    pred, lo, hi, failed = _fold_predictions(spec, obs, folds)
    return _cv_summary(obs, pred, lo, hi, failed, base)


def _inner_mape(spec, obs):
    folds = sorted(set(obs.groups))
    if len(folds) < 3:
        return math.nan
    pred, *_ = _fold_predictions(spec, obs, folds)
    ape = np.abs(pred - obs.y) / obs.y
    return float(np.nanmean(ape)) if np.isfinite(ape).any() else math.nan


def nested_cross_validate(obs: Observations, specs=CANDIDATE_SPECS) -> dict:
    """Leave-one-architecture-out accuracy of the whole procedure, spec selection included.

    In each outer fold the spec is chosen by an inner leave-one-architecture-out MAPE on
    the training architectures only (ties within :data:`CV_TIE_TOL` to the simpler spec,
    in ``specs`` order), fitted on them and used to predict the held-out architecture. The
    reported accuracy is therefore never the criterion that chose the spec.

    Returns
    -------
    dict
        As :func:`cross_validate`, plus ``chosen`` (``{architecture: spec}``).
    """
    folds = sorted(set(obs.groups))
    base = {"scheme": "nested leave-one-architecture-out (selection inside the folds)",
            "interval_level": CV_INTERVAL_LEVEL}
    if len(folds) < 4:
        return {**base, "status": f"not run: {len(folds)} distinct architecture(s), needs >= 4",
                "mape": None, "median_ape": None, "coverage_90": None, "by_size_class": {}}
    y = obs.y
    n = y.size
    pred, lo, hi = (np.full(n, math.nan) for _ in range(3))
    failed, chosen = [], {}
    for m in folds:
        test = obs.groups == m
        train = obs.subset(~test)
        inner = {s: _inner_mape(s, train) for s in specs}
        finite = {s: v for s, v in inner.items() if math.isfinite(v)}
        if not finite:
            failed.append(str(m))
            continue
        best = min(finite.values())
        pick = next(s for s in specs if s in finite and finite[s] <= best + CV_TIE_TOL)
        chosen[str(m)] = pick
        fit = fit_spec(pick, train.features, train.y, groups=train.groups)
        if fit.status != "fitted":
            failed.append(str(m))
            continue
        xf = {k: v[test] for k, v in obs.features.items()}
        pred[test], lo[test], hi[test] = predict_interval(pick, fit, xf)
    out = _cv_summary(obs, pred, lo, hi, failed, base)
    out["chosen"] = chosen
    return out


# ----------------------------------------------------------------------------- framework
def _data_ranges(obs: Observations) -> dict:
    t = obs.table

    def rng(v):
        v = np.asarray(v, dtype=float)
        v = v[np.isfinite(v)]
        return [float(v.min()), float(v.max())] if v.size else None

    return {"params_b": rng(t["params_b"]), "tp": rng(t["tp"]), "pp": rng(t["pp"]),
            "n_gpus": rng(obs.features["n_gpus"]), "batch_size": rng(obs.features["batch_size"]),
            "weights_gib": rng(obs.features["weights_gib"]), "y_gib": rng(obs.y)}


def fallback_fit(framework: str) -> SpecFit:
    """The seed plan's hand-set constants as an (unfitted) ``seed`` spec with wide intervals."""
    spec = SPECS["seed"]
    consts = SEED_PLAN_CONSTANTS.get(framework, SEED_PLAN_CONSTANTS["default"])
    k = len(spec.params)
    est = np.array([consts[n] for n in spec.param_names], dtype=float)
    nan = np.full(k, math.nan)
    return SpecFit(spec="seed", status="unfitted", param_names=spec.param_names, estimate=est,
                   se=nan.copy(), ci_lower=nan.copy(), ci_upper=nan.copy(),
                   lower_bound=np.array([ps.lower for ps in spec.params]),
                   upper_bound=np.array([ps.upper for ps in spec.params]),
                   identified=np.zeros(k, dtype=bool), at_bound=np.zeros(k, dtype=bool),
                   not_identified_reason=dict.fromkeys(spec.param_names, "seed-plan constant, not estimated"),
                   cov=np.zeros((k, k)), residual_scale=FALLBACK_RESIDUAL_SCALE, df_resid=FALLBACK_DF,
                   message="unfitted: seed-plan constants")


def _fallback_info(framework):
    key = framework if framework in SEED_PLAN_CONSTANTS else "default"
    return {"source": "seed-plan constants", "constants": dict(SEED_PLAN_CONSTANTS[key]),
            "text": _SEED_PLAN_TEXT[key],
            "residual_scale": FALLBACK_RESIDUAL_SCALE, "df_resid": FALLBACK_DF,
            "note": "deliberately wide intervals (log-scale residual scale chosen by hand, "
                    "not estimated)"}


def _select(specs: dict) -> tuple[str, dict]:
    ok = {n: f for n, f in specs.items() if f.status == "fitted" and n != "cuda_graph"}
    if not ok:
        return "seed", {"rule": "no candidate fitted; seed reported"}
    cv = {n: (f.cv or {}).get("mape") for n, f in ok.items()}
    have_cv = {n: v for n, v in cv.items() if v is not None}
    if have_cv:
        best = min(have_cv.values())
        tied = sorted((n for n, v in have_cv.items() if v <= best + CV_TIE_TOL),
                      key=lambda n: (ok[n].aic, ok[n].bic, n))
        rule = (f"lowest leave-one-architecture-out MAPE; specs within {CV_TIE_TOL:.3f} of the best "
                f"({', '.join(tied)}) tied and decided by AIC, then BIC")
        winner = tied[0]
    else:
        winner = min(ok, key=lambda n: (ok[n].aic, ok[n].bic, n))
        rule = "lowest AIC (cross-validation not available), then BIC"
    table = {n: {"cv_mape": cv.get(n), "aic": ok[n].aic, "bic": ok[n].bic} for n in ok}
    return winner, {"rule": rule, "candidates": table}


def fit_framework(obs: Observations, *, specs=None, cv: bool = True,
                  drop_outliers: bool = False, min_profiles: int = MIN_PROFILES,
                  min_models: int = MIN_MODELS, cuda_graph_obs: Observations | None = None) -> FrameworkFit:
    """Fit every candidate spec of one framework, cross-validate and select.

    Parameters
    ----------
    obs : Observations
        From :func:`fitting.overhead.observations.build_observations`.
    specs : sequence of str
        Candidate specs (``seed`` is always included).
    cv : bool
        Run leave-one-architecture-out cross-validation (needed for CV-based selection) and
        the nested cross-validation whose accuracy is reported (:func:`nested_cross_validate`).
    drop_outliers : bool
        Refit without the profiles the screening of the ``seed`` and selected fits flags.
    min_profiles, min_models : int
        Minimum data for a fit; below it the framework is ``unfitted``. The CUDA-graph term
        needs the same minimum, or it is left out (``cuda_graph`` null).
    cuda_graph_obs : Observations, optional
        vLLM only: the CUDA-graph observations
        (``build_observations(frame, "vllm", response="cuda_graph")``); without it no
        CUDA-graph term is fitted.

    Returns
    -------
    FrameworkFit
    """
    specs = tuple(dict.fromkeys(("seed",) + tuple(candidate_specs(obs.framework) if specs is None else specs)))
    options = {"error_mode": ERROR_MODE, "cv": bool(cv), "drop_outliers": bool(drop_outliers),
               "min_profiles": int(min_profiles), "min_models": int(min_models), "specs": list(specs)}
    n_models = len(set(obs.groups)) if obs.n_used else 0
    if obs.n_used < min_profiles or n_models < min_models:
        why = (f"too little data: {obs.n_used} usable profile(s) of {n_models} architecture(s); a fit "
               f"needs >= {min_profiles} profiles of >= {min_models} architectures")
        return _unfitted(obs, why, options)

    dropped: list = []
    fits = _fit_all(obs, specs, cv)
    if drop_outliers:
        flagged = sorted({o["profile_id"] for name in {"seed", _select(fits)[0]}
                          for o in fits[name].outliers})
        if flagged:
            keep = ~obs.table["profile_id"].isin(flagged).to_numpy()
            dropped = [{"profile_id": p, "reason": "outlier (dropped on request)"} for p in flagged]
            obs = obs.subset(keep)
            obs.excluded = sorted(obs.excluded + dropped, key=lambda d: d["profile_id"])
            fits = _fit_all(obs, specs, cv)
    if fits["seed"].status != "fitted":
        return _unfitted(obs, f"the seed spec could not be fitted: {fits['seed'].message}", options)
    selected, selection = _select(fits)
    cg = None
    cg_obs = cuda_graph_obs if obs.framework == "vllm" else None
    if (cg_obs is not None and cg_obs.n_used >= min_profiles
            and len(set(cg_obs.groups)) >= min_models):
        cg = fit_spec("cuda_graph", cg_obs.features, cg_obs.y, groups=cg_obs.groups)
        cg.outliers = screen_outliers("cuda_graph", cg, cg_obs.features, cg_obs.y,
                                      cg_obs.table["profile_id"].to_numpy())
        cg.data_ranges = _data_ranges(cg_obs)
        cg.cv = cross_validate("cuda_graph", cg_obs) if cv else None
    # selection inside the folds among the specs that fit the whole data
    nested = (nested_cross_validate(obs, tuple(s for s in specs if fits[s].status == "fitted"))
              if cv else None)
    return FrameworkFit(framework=obs.framework, status="fitted", observations=obs, specs=fits,
                        selected_spec=selected, selection=selection, cuda_graph=cg,
                        dropped_outliers=dropped, options=options, nested_cv=nested)


def _fit_all(obs, specs, cv):
    fits = {}
    ranges = _data_ranges(obs)
    ids = obs.table["profile_id"].to_numpy()
    for name in specs:
        f = fit_spec(name, obs.features, obs.y, groups=obs.groups)
        f.data_ranges = ranges
        if f.status == "fitted":
            f.outliers = screen_outliers(name, f, obs.features, obs.y, ids)
            f.cv = cross_validate(name, obs) if cv else None
        fits[name] = f
    return fits


def _unfitted(obs, why, options):
    fb = fallback_fit(obs.framework)
    fb.data_ranges = _data_ranges(obs) if obs.n_used else None
    return FrameworkFit(framework=obs.framework, status="unfitted", observations=obs,
                        specs={"seed": fb}, selected_spec="seed",
                        selection={"rule": "unfitted: seed-plan constants"},
                        fallback=_fallback_info(obs.framework), reason=why, options=options)


def decide_source_unit_base(spec, fit: SpecFit, features: dict, printed_gib, source: str, label: str, *,
                            min_lr: float = UNIT_BASE_MIN_LR):
    """The unit base of one source's figures (read as binary) under a fitted spec: the
    log-likelihood of each reading (:func:`fitting.overhead.measurement.unit_base_loglik`, the
    fit's within- and between-architecture scales) and the decision at ``min_lr``."""
    sp = get_spec(spec) if isinstance(spec, str) else spec
    exact, pred = sp.exact_offset(features), sp.uncertain_part(features, fit.estimate)
    ll = {base: unit_base_loglik(printed_gib, exact, pred, within_scale=fit.residual_scale,
                                 between_scale=fit.between_scale or 0.0, factor=c)
          for base, c in UNIT_BASE_FACTORS[label].items()}
    return decide_unit_base(source, ll, label=label, min_lr=min_lr, n=int(np.size(printed_gib)))


def fit_with_unit_bases(spec, features: dict, y, groups, *, ambiguous: dict, label: str = "GB",
                        min_lr: float = UNIT_BASE_MIN_LR, max_rounds: int = 5, **fit_kw):
    """Fit a spec and the unit bases of ambiguous sources jointly.

    Parameters
    ----------
    spec : str or OverheadSpec
    features, y, groups
        The verified rows (:func:`fitting.overhead.fit.fit_spec` inputs).
    ambiguous : dict
        ``{source: (features, printed_gib, groups)}``: each source's rows, figures read as binary.
    label : {"GB", "MB"} or dict
        The printed unit of every source, or ``{source: label}``.
    min_lr, max_rounds
        Decision threshold; coordinate-ascent rounds at most.
    **fit_kw
        Passed to :func:`fitting.overhead.fit.fit_spec`.

    Returns
    -------
    (SpecFit, dict of UnitBaseDecision)
        The fit with every decided source's rows at its chosen factor, and the decisions.
    """
    sp = get_spec(spec) if isinstance(spec, str) else spec
    decided: dict = {}
    fit = None
    for _ in range(max_rounds):
        keys = sorted(k for k, d in decided.items() if d.decided)
        feats = {k: np.concatenate([np.asarray(features[k], float)] +
                                   [np.asarray(ambiguous[s][0][k], float) for s in keys]) for k in features}
        yy = np.concatenate([np.asarray(y, float)] + [decided[s].factor * np.asarray(ambiguous[s][1], float)
                                                      for s in keys])
        gg = np.concatenate([np.asarray(groups, dtype=object)] + [np.asarray(ambiguous[s][2], dtype=object)
                                                                  for s in keys])
        fit = fit_spec(sp, feats, yy, groups=gg, **fit_kw)
        new = {s: decide_source_unit_base(sp, fit, f, x, s, label[s] if isinstance(label, dict) else label,
                                          min_lr=min_lr)
               for s, (f, x, _g) in sorted(ambiguous.items())}
        if {s: d.base for s, d in new.items()} == {s: d.base for s, d in decided.items()}:
            decided = new
            break
        decided = new
    return fit, decided
