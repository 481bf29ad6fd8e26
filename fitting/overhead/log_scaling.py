r"""The logarithmic batch-scaling hypothesis, tested per framework.

The seed plan assumes that overhead grows with ``log2(b)`` of the batch size ``b``. Two
questions are tested on each framework's profiles (log error mode, as in the fits):

1. **Is there a batch term at all?** ``seed`` with ``batch_scaling = 0`` against ``seed``:
   extra-sum-of-squares F test and likelihood-ratio test (:func:`fitting.stats.nls.f_test`,
   :func:`fitting.stats.nls.lr_test`). ``batch_scaling >= 0`` puts the null on the boundary of
   the parameter space, where the LR statistic is a 50:50 mixture of :math:`\chi^2_0` and
   :math:`\chi^2_1` (Self & Liang 1987): the reported :math:`\chi^2_1` p-value is
   conservative and ``pvalue_boundary`` (half of it) is the mixture's.
2. **Which shape?** In ``boxcox`` the batch term is
   :math:`M (b^\lambda - 1)/(\lambda \ln 2)`: :math:`\lambda = 0` is exactly ``seed``'s
   ``log2(b)``, :math:`\lambda = 1` linear scaling. Likelihood-ratio tests of
   :math:`\lambda = 0` (``seed`` nested in ``boxcox``) and of :math:`\lambda = 1`
   (``boxcox`` with ``lambda`` fixed), and the profile-likelihood 95 % interval
   :math:`\{\lambda : 2(\ell_{max} - \ell_p(\lambda)) \le \chi^2_{1, 0.95}\}`.

A framework is *testable* when its profiles state at least three distinct batch sizes
(rows whose batch size was defaulted do not count) and the batch term is identified;
otherwise the verdict says "not testable with these profiles" and names the study that
would make it testable.

Where the KV cache grows with the workload (transformers), the measured peak grows
linearly in ``b`` because the KV cache does; the physics KV is part of the offset, so what
these tests see is what remains after it (for transformers 4.35 a second copy of the KV
cache at peak, which is linear in ``b``: the ``physical`` spec's ``kv_excess``).

:func:`simulate_lambda0_rejections` checks the procedure: with data simulated from a true
log model the LR test of :math:`\lambda = 0` rejects at about the nominal rate, and with
data from a linear model it rejects often (power).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import optimize, stats

from fitting.overhead.fit import SpecFit, fit_spec
from fitting.overhead.observations import Observations
from fitting.overhead.specs import BOXCOX, SEED
from fitting.stats.nested_tests import f_test, lr_test
from fitting.stats.nls import NLSWarning

__all__ = ["log_scaling_test", "not_testable", "profile_lambda", "simulate_lambda0_rejections", "BATCH_STUDY",
           "MIN_DISTINCT_BATCH"]

#: Distinct stated batch sizes needed for the tests.
MIN_DISTINCT_BATCH = 3
#: The study that makes the test possible where the profiles do not vary batch size.
BATCH_STUDY = ("the batch-scaling study (a GPU profiling study under studies/ that runs one model "
               "at fixed settings over batch sizes 1, 2, 4, ..., 256)")
_LAMBDA_GRID = np.round(np.arange(-2.0, 3.0001, 0.2), 10)
#: Parametric bootstrap replicates calibrating the LR tests.
N_BOOT = 199
#: ... of the lambda = 0 test (each replicate refits boxcox from two lambda starts).
N_BOOT_LAMBDA = 99


def _clustered_bootstrap_lr(null_fit, x, groups, observed, *, n_boot, seed, fit_null, fit_full):
    """p-value of an LR statistic by a parametric bootstrap under the null fit that keeps the
    clustering: each replicate draws one effect per architecture (``tau``, or the
    conservative stand-in) and one per row (``sigma``) on the log scale of the uncertain
    part, refits null and full with independent errors and recomputes the statistic.
    ``(1 + #{LR* >= LR}) / (1 + valid replicates)``; None where the null fit failed."""
    if null_fit.status != "fitted" or not math.isfinite(observed):
        return None
    spec = SEED
    em = null_fit.error_model
    tau, sigma = math.sqrt(em.between_variance), float(em.within_scale)
    exact = spec.exact_offset(x)
    log_h = np.log(spec.uncertain_part(x, null_fit.estimate))
    codes = np.unique(np.asarray(groups), return_inverse=True)[1]
    rng = np.random.default_rng(seed)
    exceed, valid = 0, 0
    for _ in range(int(n_boot)):
        z = log_h + rng.normal(0.0, tau, codes.max() + 1)[codes] + rng.normal(0.0, sigma, log_h.size)
        yy = exact + np.exp(z)
        r, f = _quiet(lambda: (fit_null(yy), fit_full(yy)))[0]
        if r.status != "fitted" or f.status != "fitted":
            continue
        valid += 1
        exceed += int(2.0 * (f.loglike - r.loglike) >= observed - 1e-9)
    return (1 + exceed) / (1 + valid) if valid else None


def _test_dict(res):
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in res._asdict().items()}


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NLSWarning)
        out = fn(*args, **kw)
    return out, [str(w.message) for w in caught]


def profile_lambda(features: dict, y, *, lambda_hat: float, loglike_max: float, alpha: float = 0.05,
                   grid=_LAMBDA_GRID) -> dict:
    """Profile likelihood of ``lambda`` in ``boxcox`` and its ``1 - alpha`` interval.

    Parameters
    ----------
    features : dict of ndarray
    y : array_like
        Response, GiB per GPU.
    lambda_hat, loglike_max : float
        Estimate and log-likelihood of the unrestricted ``boxcox`` fit.
    alpha : float
    grid : array_like
        Values of ``lambda`` (within its bounds) at which the profile is evaluated; the
        interval ends are then found by root finding between the estimate and the first
        grid point outside the interval on each side.

    Returns
    -------
    dict
        ``lower, upper``: the connected interval around the estimate where
        ``2 (l_max - l_p(lambda)) <= chi2(1, 1 - alpha)``; an end that runs into the bound
        of lambda is None with ``lower_open``/``upper_open`` True. Also ``grid`` and
        ``profile_loglike``.
    """
    y = np.asarray(y, dtype=float)
    crit = stats.chi2.ppf(1 - alpha, 1)
    cache: dict = {}

    def ll(lam):
        key = round(float(lam), 12)
        if key not in cache:
            f = fit_spec(BOXCOX, features, y, fixed={"lambda": float(lam)})
            cache[key] = f.loglike if f.status == "fitted" else -math.inf
        return cache[key]

    grid = np.asarray(grid, dtype=float)
    vals = np.array([ll(lam) for lam in grid])
    lmax = max(loglike_max, float(np.max(vals)))

    def h(lam):
        return 2.0 * (lmax - ll(lam)) - crit

    def end(side):
        pts = grid[grid > lambda_hat] if side > 0 else grid[grid < lambda_hat][::-1]
        inner = lambda_hat
        for pt in pts:
            if h(pt) > 0:
                try:
                    return float(optimize.brentq(h, inner, pt, xtol=1e-4)), False
                except ValueError:
                    return float((inner + pt) / 2), False
            inner = pt
        return None, True

    lo, lo_open = end(-1)
    hi, hi_open = end(+1)
    return {"method": "profile likelihood", "level": 1 - alpha, "lower": lo, "upper": hi,
            "lower_open": lo_open, "upper_open": hi_open,
            "lambda_bounds": [float(grid[0]), float(grid[-1])],
            "grid": [float(v) for v in grid],
            "profile_loglike": [float(v) if math.isfinite(v) else None for v in vals]}


def _stated_batch_sizes(obs: Observations):
    t = obs.table
    b = np.asarray(obs.features["batch_size"], dtype=float)
    stated = ~t["batch_defaulted"].to_numpy(dtype=bool) if "batch_defaulted" in t else np.ones(b.size, bool)
    return sorted({float(v) for v in b[stated]}), sorted({float(v) for v in b})


def _fmt_num(v):
    return "?" if v is None else f"{v:.4g}"


def _fmt_p(p):
    if p is None or not math.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"= {p:.3g}"


def not_testable(obs: Observations, reason: str, alpha: float = 0.05) -> dict:
    """The result of :func:`log_scaling_test` for a framework whose data cannot test it."""
    stated, all_b = _stated_batch_sizes(obs) if obs.n_used else ([], [])
    return {"alpha": alpha, "n": obs.n_used, "distinct_batch_sizes": stated,
            "distinct_batch_sizes_incl_defaulted": all_b, "testable": False,
            "batch_term": None, "lambda": None, "study_needed": BATCH_STUDY, "warnings": [],
            "reason": reason,
            "verdict": f"not testable with these profiles: {reason}. Run {BATCH_STUDY} to make it testable."}


def log_scaling_test(obs: Observations, *, seed_fit: SpecFit | None = None,
                     boxcox_fit: SpecFit | None = None, alpha: float = 0.05,
                     profile_ci: bool = True) -> dict:
    """All log-scaling tests of one framework with a plain-language verdict.

    Parameters
    ----------
    obs : Observations
    seed_fit, boxcox_fit : SpecFit, optional
        Fits already made on ``obs`` (refitted here when not given).
    alpha : float
        Significance level of the verdict and ``1 -`` the interval level.
    profile_ci : bool
        Compute the profile-likelihood interval of lambda.

    Returns
    -------
    dict
        ``testable``, ``distinct_batch_sizes`` (stated), ``batch_term`` (F and LR),
        ``lambda`` (estimate, tests of 0 and 1, profile interval), ``verdict`` and, when
        not testable, ``study_needed``. JSON-ready (None for undefined numbers).
    """
    if not obs.n_used:
        return not_testable(obs, "no usable profiles", alpha)
    stated, all_b = _stated_batch_sizes(obs)
    # rows whose batch size was defaulted leave the batch tests (their batch is a guess)
    n_def = int(obs.table["batch_defaulted"].sum()) if "batch_defaulted" in obs.table else 0
    if n_def:
        obs = obs.subset(~obs.table["batch_defaulted"].to_numpy(dtype=bool))
        seed_fit = boxcox_fit = None
    x, y = obs.features, obs.y
    if len(stated) < MIN_DISTINCT_BATCH:
        return not_testable(obs, f"batch size takes {len(stated)} distinct stated value(s) "
                                 f"({', '.join(f'{v:g}' for v in stated) or 'none'}); the tests need >= "
                                 f"{MIN_DISTINCT_BATCH}", alpha)
    if seed_fit is None or seed_fit.between_rule == "none":
        seed_fit = fit_spec(SEED, x, y, groups=obs.groups)
    names = list(seed_fit.param_names)
    bi = names.index("batch_scaling")
    if seed_fit.status != "fitted" or not seed_fit.identified[bi]:
        return not_testable(obs, "the batch term is not identified in these profiles", alpha)
    out = {"alpha": alpha, "n": obs.n_used, "distinct_batch_sizes": stated,
           "distinct_batch_sizes_incl_defaulted": all_b, "testable": True,
           "batch_defaulted_rows": (f"{n_def} row(s) with a defaulted batch size left out of the batch tests"
                                    if n_def else "none"),
           "n_architectures": int(len(set(obs.groups))),
           "batch_term": None, "lambda": None, "study_needed": None, "warnings": [], "reason": None}

    # 1. no batch term vs seed: the LR statistic of independent-errors fits, calibrated by a
    #    parametric bootstrap under the null that keeps the architecture clustering
    seed_ind = fit_spec(SEED, x, y)
    restricted = fit_spec(SEED, x, y, fixed={"batch_scaling": 0.0})
    (ft, lt), w1 = _quiet(lambda: (f_test(restricted.results, seed_ind.results),
                                    lr_test(restricted.results, seed_ind.results)))
    null_grp = fit_spec(SEED, x, y, fixed={"batch_scaling": 0.0}, groups=obs.groups)
    p_boot = _clustered_bootstrap_lr(
        null_grp, x, obs.groups, lt.statistic, n_boot=N_BOOT, seed=0,
        fit_null=lambda yy: fit_spec(SEED, x, yy, fixed={"batch_scaling": 0.0}),
        fit_full=lambda yy: fit_spec(SEED, x, yy))
    lo_ci = float(seed_fit.ci_lower[bi]) if math.isfinite(seed_fit.ci_lower[bi]) else None
    bt = {"null": "batch_scaling = 0 (no batch term)", "full": "seed (log2 batch term)",
          "f_test": _test_dict(ft), "lr_test": _test_dict(lt),
          "pvalue_boundary": (None if not math.isfinite(lt.pvalue) else float(0.5 * lt.pvalue)),
          "pvalue_bootstrap": p_boot, "n_boot": N_BOOT,
          "batch_scaling": float(seed_fit.estimate[bi]),
          "batch_scaling_ci": [lo_ci, float(seed_fit.ci_upper[bi]) if math.isfinite(seed_fit.ci_upper[bi]) else None],
          "ci_note": (f"95% CI with the random intercept per architecture, Student t on {seed_fit.df:.1f} df"),
          "detected": bool(lo_ci is not None and lo_ci > 0)}
    out["batch_term"] = bt
    if not bt["detected"]:
        out["lambda"] = {"estimate": None, "identified": False, "lr_lambda0": None, "lr_lambda1": None,
                         "note": "batch term not detected (its 95% CI reaches 0): lambda has no meaning"}
        out["warnings"] += sorted(set(w1))
        out["verdict"] = _verdict(bt, out["lambda"], alpha)
        return out
    seed_grouped, seed_fit = seed_fit, seed_ind

    # 2. boxcox: lambda = 0 (seed) and lambda = 1
    lam1 = fit_spec(BOXCOX, x, y, fixed={"lambda": 1.0})
    seed_as_boxcox = np.append(seed_fit.estimate, 0.0)
    starts = [seed_as_boxcox] + ([lam1.estimate] if lam1.status == "fitted" else [])
    if boxcox_fit is None or boxcox_fit.status != "fitted" or (
            boxcox_fit.rss > min(seed_fit.rss, lam1.rss if lam1.status == "fitted" else math.inf) * (1 + 1e-9)):
        boxcox_fit = fit_spec(BOXCOX, x, y, extra_starts=starts)
    li = list(boxcox_fit.param_names).index("lambda")
    lam_info = {"estimate": float(boxcox_fit.estimate[li]),
                "se": None if not math.isfinite(boxcox_fit.se[li]) else float(boxcox_fit.se[li]),
                "identified": bool(boxcox_fit.identified[li])}
    if boxcox_fit.status == "fitted" and boxcox_fit.identified[li]:
        (lr0, lr1), w2 = _quiet(lambda: (lr_test(seed_fit.results, boxcox_fit.results),
                                          lr_test(lam1.results, boxcox_fit.results)
                                          if lam1.status == "fitted" else None))
        lam_info["lr_lambda0"] = _test_dict(lr0)
        lam_info["lr_lambda0"]["pvalue_bootstrap"] = _clustered_bootstrap_lr(
            seed_grouped, x, obs.groups, lr0.statistic, n_boot=N_BOOT_LAMBDA, seed=1,
            fit_null=lambda yy: fit_spec(SEED, x, yy),
            fit_full=lambda yy: fit_spec(BOXCOX, x, yy, lambda_starts=(0.0, 1.0)))
        lam_info["lr_lambda1"] = _test_dict(lr1) if lr1 is not None else None
        if profile_ci:
            lam_info["profile_ci"] = profile_lambda(x, y, lambda_hat=lam_info["estimate"],
                                                    loglike_max=boxcox_fit.loglike, alpha=alpha)
        out["warnings"] += sorted(set(w1 + w2))
    else:
        lam_info["lr_lambda0"] = lam_info["lr_lambda1"] = None
        lam_info["note"] = ("lambda not estimable: the fitted batch term is zero or not identified"
                            if boxcox_fit.status == "fitted" else f"boxcox fit failed: {boxcox_fit.message}")
        out["warnings"] += sorted(set(w1))
    out["lambda"] = lam_info
    out["verdict"] = _verdict(bt, lam_info, alpha)
    return out


def _ols(x, y):
    """Slope, its standard error and R^2 of y = a + c x (None where undefined)."""
    X = np.column_stack([np.ones_like(x), x])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    n = y.size
    sxx = float(np.sum((x - x.mean()) ** 2))
    tss = float(np.sum((y - y.mean()) ** 2))
    se = math.sqrt(float(resid @ resid) / (n - 2) / sxx) if n > 2 and sxx > 0 else None
    r2 = 1.0 - float(resid @ resid) / tss if tss > 0 else None
    return float(coef[1]), se, r2


def per_series_batch_scaling(obs: Observations, alpha: float = 0.05) -> dict:
    """How memory grows with batch size inside each series, where only the batch changes.

    A sub-series is one ``series`` at fixed prompt and output lengths with at least
    :data:`MIN_DISTINCT_BATCH` stated batch sizes (rows with a defaulted batch left out).
    In each, two ordinary least-squares lines (descriptive, one model and one setting, so
    no between-model error):

    * the residual overhead ``R = y - (W + KV + A)`` (what the physics does not explain,
      GiB per GPU) on ``log2(b)``: its slope is the overhead added per doubling of the
      batch, tested against 0 (Student t, ``n - 2`` df);
    * the measured total ``y`` on ``b``: its slope (GiB per added sequence) beside the
      physics' slope of ``W + KV + A`` on ``b``; their ratio says whether the physics
      carries the growth.

    Returns
    -------
    dict
        ``series`` (one dict per sub-series), ``n_series``, ``n_overhead_grows`` (slope > 0
        at ``alpha``), ``n_overhead_shrinks``, ``median_total_slope_ratio`` and
        ``summary`` (plain text).
    """
    from scipy import stats  # lazy: scipy.stats ~0.3 s at import; only the refit reports need it

    t = obs.table
    if not len(t):
        return {"series": [], "n_series": 0, "summary": "no usable profiles"}
    keep = ~t["batch_defaulted"].to_numpy(dtype=bool) if "batch_defaulted" in t else np.ones(len(t), bool)
    phys = obs.features["weights_gib"] + obs.features["kv_gib"] + obs.features["activations_gib"]
    y = obs.y
    b = obs.features["batch_size"]
    keys = list(zip(t["series"].astype(str), t["input_len"].astype(float), t["output_len"].astype(float)))
    groups: dict = {}
    for i, k in enumerate(keys):
        if keep[i]:
            groups.setdefault(k, []).append(i)
    rows = []
    for (series, s_in, s_out), idx in sorted(groups.items()):
        idx = np.array(idx)
        if len(np.unique(b[idx])) < MIN_DISTINCT_BATCH:
            continue
        r = y[idx] - phys[idx]
        slope_r, se_r, _ = _ols(np.log2(b[idx]), r)
        p = None
        if se_r and se_r > 0:
            p = float(2 * stats.t.sf(abs(slope_r / se_r), idx.size - 2))
        slope_y, _, r2_lin = _ols(b[idx], y[idx])
        _, _, r2_log = _ols(np.log2(b[idx]), y[idx])
        slope_phys, _, _ = _ols(b[idx], phys[idx])
        rows.append({"series": series, "input_len": s_in, "output_len": s_out, "n": int(idx.size),
                     "batch_sizes": sorted(float(v) for v in np.unique(b[idx])),
                     "overhead_per_doubling_gib": slope_r, "overhead_per_doubling_se_gib": se_r,
                     "overhead_per_doubling_pvalue": p,
                     "total_per_sequence_gib": slope_y, "physics_per_sequence_gib": slope_phys,
                     "total_r2_linear_in_b": r2_lin, "total_r2_linear_in_log2_b": r2_log})
    grows = sum(1 for r in rows if r["overhead_per_doubling_pvalue"] is not None
                and r["overhead_per_doubling_pvalue"] < alpha and r["overhead_per_doubling_gib"] > 0)
    shrinks = sum(1 for r in rows if r["overhead_per_doubling_pvalue"] is not None
                  and r["overhead_per_doubling_pvalue"] < alpha and r["overhead_per_doubling_gib"] < 0)
    ratios = [r["total_per_sequence_gib"] / r["physics_per_sequence_gib"] for r in rows
              if r["physics_per_sequence_gib"] and abs(r["physics_per_sequence_gib"]) > 1e-9]
    lin_better = sum(1 for r in rows if (r["total_r2_linear_in_b"] or 0) >= (r["total_r2_linear_in_log2_b"] or 0))
    med = float(np.median(ratios)) if ratios else None
    sig = [abs(r["overhead_per_doubling_gib"]) for r in rows if r["overhead_per_doubling_pvalue"] is not None
           and r["overhead_per_doubling_pvalue"] < alpha]
    size = (f", by at most {max(sig):.3g} GiB per doubling (median {float(np.median(sig)):.3g})" if sig else "")
    if rows:
        summary = (f"{len(rows)} sub-series vary only the batch size. The overhead beyond the physics grows "
                   f"significantly with log2(batch) in {grows} of them and falls in {shrinks} (t-test at "
                   f"{alpha:g}){size}; total memory is linear in the batch size (R^2 of a line in b at least that "
                   f"of a line in log2 b) in {lin_better} of {len(rows)}, and its growth per added sequence "
                   + (f"is {med:.3f} x the physics' (KV + activations per sequence), median over sub-series."
                      if med is not None else "has no physics counterpart."))
    else:
        summary = f"no series holds {MIN_DISTINCT_BATCH} or more stated batch sizes at fixed lengths"
    return {"series": rows, "n_series": len(rows), "n_overhead_grows": grows, "n_overhead_shrinks": shrinks,
            "n_total_linear_in_b": lin_better, "median_total_slope_ratio": med, "summary": summary}


def _verdict(bt, lam, alpha):
    p_b = bt.get("pvalue_bootstrap")
    if p_b is None:
        p_b = bt.get("pvalue_boundary")
    pf = bt["f_test"]["pvalue"]
    parts = []
    if not bt.get("detected", True):
        ci = bt.get("batch_scaling_ci") or [None, None]
        return ("batch term not detected: the shape of batch scaling is not identifiable from these profiles "
                f"(batch_scaling {bt['batch_scaling']:.4g}, 95% CI [{_fmt_num(ci[0])}, {_fmt_num(ci[1])}] reaches 0; "
                f"LR p {_fmt_p(p_b)} by a clustered parametric bootstrap).")
    if lam.get("lr_lambda0") is not None:
        p0 = lam["lr_lambda0"].get("pvalue_bootstrap")
        if p0 is None:
            p0 = lam["lr_lambda0"]["pvalue"]
        parts.append(("log scaling rejected" if p0 is not None and p0 < alpha else "log scaling not rejected")
                     + f" (LR test of lambda = 0, p {_fmt_p(p0)}, clustered parametric bootstrap)")
        if lam.get("lr_lambda1") is not None:
            p1 = lam["lr_lambda1"]["pvalue"]
            parts.append(("linear rejected" if p1 is not None and p1 < alpha else "linear not rejected")
                         + f" (lambda = 1, p {_fmt_p(p1)})")
        ci = lam.get("profile_ci") or {}
        lo = "-inf" if ci.get("lower_open") else (f"{ci['lower']:.2f}" if ci.get("lower") is not None else "?")
        hi = "+inf" if ci.get("upper_open") else (f"{ci['upper']:.2f}" if ci.get("upper") is not None else "?")
        if ci:
            if ci.get("lower_open"):
                lo = f"<= {ci['lambda_bounds'][0]:g} (bound)"
            if ci.get("upper_open"):
                hi = f">= {ci['lambda_bounds'][1]:g} (bound)"
            parts.append(f"lambda = {lam['estimate']:.2f}, 95% profile CI [{lo}, {hi}]")
        else:
            parts.append(f"lambda = {lam['estimate']:.2f}")
    else:
        parts.append(lam.get("note", "lambda not estimable"))
    needed = p_b is not None and p_b < alpha
    parts.append(("a batch term is needed" if needed else "no evidence for a batch term")
                 + f" (LR p {_fmt_p(p_b)}, clustered parametric bootstrap; boundary-corrected "
                 f"chi2 p {_fmt_p(bt.get('pvalue_boundary'))}; F p {_fmt_p(pf)})")
    if not needed:
        parts.append("with no detectable batch effect the shape of the batch curve is not "
                     "determined by these profiles")
    return "; ".join(parts) + "."


# ------------------------------------------------------------------------------ simulation
def _simulated_design(n_obs, rng):
    """SIMULATED features: model memory 2-80 GiB, batch 1..256, tp 1/2/4 (tests only)."""
    b = 2.0 ** rng.integers(0, 9, n_obs)
    n = 2.0 ** rng.integers(0, 3, n_obs)
    w_total = rng.uniform(2.0, 140.0, n_obs)
    w = w_total / n
    act = 0.05 * w
    return {"weights_gib": w, "weights_total_gib": w_total, "kv_gib": np.zeros(n_obs),
            "activations_gib": act, "model_mem_gib": w + act, "n_gpus": n, "tp": n, "batch_size": b,
            "vocab_size": np.full(n_obs, 32000.0),
            **{k: np.zeros(n_obs) for k in ("forward_gib", "sampler_gib", "leftover_gib", "sampler_regime",
                                            "runner_state_gib")}}


def simulate_lambda0_rejections(true_lambda: float = 0.0, *, n_obs: int = 40, n_reps: int = 200,
                                alpha: float = 0.05, sigma_log: float = 0.02,
                                true_params=(0.8, 0.03, 0.05, 0.004), seed: int = 0) -> dict:
    """Rejection rate of the LR test of ``lambda = 0`` on SIMULATED data.

    Data are generated from ``boxcox`` with ``lambda = true_lambda`` and log-normal errors
    (``sigma_log``) on the uncertain part (the fitted error model) on one simulated design (drawn once with ``seed``); each replicate
    fits ``seed`` and ``boxcox`` and tests ``lambda = 0`` at ``alpha``.

    Returns
    -------
    dict
        ``rate`` (rejections / valid replicates), ``n_valid``, ``n_reps``, ``alpha``.
    """
    rng = np.random.default_rng(seed)
    x = _simulated_design(n_obs, rng)
    p_true = np.array(list(true_params) + [true_lambda], dtype=float)
    exact = BOXCOX.exact_offset(x)
    h = BOXCOX.uncertain_part(x, p_true)
    eps = rng.normal(0.0, sigma_log, (n_reps, n_obs))
    ys = exact[None, :] + h[None, :] * np.exp(eps)
    rejections, valid = 0, 0
    crit = stats.chi2.ppf(1 - alpha, 1)
    for y in ys:
        s = fit_spec(SEED, x, y)
        b = fit_spec(BOXCOX, x, y, extra_starts=[np.append(s.estimate, 0.0)], lambda_starts=())
        if s.status != "fitted" or b.status != "fitted" or not b.identified[-1]:
            continue
        valid += 1
        stat = 2.0 * (b.loglike - s.loglike)
        rejections += int(stat > crit)
    return {"rate": rejections / valid if valid else math.nan, "n_valid": valid,
            "n_reps": n_reps, "alpha": alpha, "true_lambda": true_lambda, "n_obs": n_obs}
