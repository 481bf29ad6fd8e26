"""Intervals and fit probabilities (fitting.stats.intervals).

Oracle: scipy.special's Student-t functions. Calibration: SIMULATED data from known
coefficients of the overhead specs in every error mode, fitted here by least squares;
90 % prediction intervals must cover 87-93 % of fresh draws, and the predicted fit
probabilities must match the observed frequency of "fits".
"""

import math

import numpy as np
import pytest
from scipy import optimize, special

from fitting.stats import intervals
from fitting.stats.intervals import ERROR_MODES, Predictive, delta_variance, t_cdf, t_ppf
from fitting.overhead.specs import PHYSICAL, SEED, response_offset_gib

CDF_RTOL = 1e-9          # relative to min(p, 1-p)
PPF_RTOL = 1e-9
COVERAGE_BAND = (0.87, 0.93)


@pytest.mark.parametrize("df", [1, 2, 3, 4.5, 7, 12, 30, 101, 313, 2000, 5e4, 2e5, math.inf])
def test_t_cdf_matches_scipy(df):
    rng = np.random.default_rng(1)
    t = np.concatenate([rng.standard_normal(400) * 4, [0.0, 1e-9, -1e-9, 40.0, -40.0, 1e3, -1e3]])
    got, ref = t_cdf(t, df), special.stdtr(df, t)
    if df <= intervals._DF_NORMAL:
        assert np.all(np.abs(got - ref) <= CDF_RTOL * np.maximum(np.minimum(ref, 1 - ref), 1e-300))
    else:  # the normal distribution is used beyond _DF_NORMAL
        assert np.all(np.abs(got - ref) <= 1e-5)
    assert t_cdf(np.inf, df) == 1.0 and t_cdf(-np.inf, df) == 0.0


@pytest.mark.parametrize("df", [1, 2, 3, 5, 9.5, 30, 250, 4000, math.inf])
@pytest.mark.parametrize("p", [1e-8, 0.001, 0.025, 0.05, 0.3, 0.5, 0.8, 0.95, 0.975, 0.999])
def test_t_ppf_matches_scipy(df, p):
    ref = special.stdtrit(df, p)
    assert abs(t_ppf(p, df) - ref) <= PPF_RTOL * max(1.0, abs(ref))


def test_t_ppf_rejects_bad_input():
    with pytest.raises(ValueError):
        t_ppf(1.5, 3)
    with pytest.raises(ValueError):
        t_ppf(0.5, 0)


# ------------------------------------------------------------------ simulated fits
def _features(rng, n):
    """Random SIMULATED feature sets spanning 1-70 B models, 1-8 GPUs, batch 1-256."""
    w_total = np.exp(rng.uniform(np.log(2), np.log(140), n))
    n_gpus = rng.choice([1, 2, 4, 8], n).astype(float)
    w = w_total / n_gpus
    act = rng.uniform(0.2, 4.0, n)
    b = rng.choice([1, 2, 4, 8, 16, 64, 256], n).astype(float)
    kv = rng.uniform(0, 1, n) * w
    f = {"weights_gib": w, "weights_total_gib": w_total, "kv_gib": kv, "activations_gib": act,
         "n_gpus": n_gpus, "batch_size": b, "vocab_size": np.full(n, 128256.0)}
    f["model_mem_gib"] = w + kv + act
    return f


TRUE = {"physical": (PHYSICAL, np.array([0.6, 1.2, 0.3, 0.2, 1.0])),
        "seed": (SEED, np.array([0.5, 0.03, 0.08, 0.004]))}
SCALE = {"log": 0.06, "relative": 0.05, "absolute": 0.4}


def _draw(f, mode, s, rng):
    e = s * rng.standard_normal(f.shape)
    if mode == "log":
        return f * np.exp(e)
    if mode == "relative":
        return f / (1.0 - e)
    return f + e


def _fit(spec, x, y, mode, p0):
    """Least squares in the error mode; covariance s^2 (J'J)^-1 of the working residuals."""
    off = response_offset_gib(x)

    def resid(p):
        f = off + spec.evaluate(x, p)
        return {"log": np.log(y) - np.log(f), "relative": (y - f) / y, "absolute": y - f}[mode]

    def jac(p):
        f = off + spec.evaluate(x, p)
        J = spec.jacobian(x, p)
        return {"log": -J / f[:, None], "relative": -J / y[:, None], "absolute": -J}[mode]

    res = optimize.least_squares(resid, p0, jac=jac, method="lm", xtol=1e-12, ftol=1e-12)
    r = resid(res.x)
    dof = len(y) - len(p0)
    s2 = r @ r / dof
    J = jac(res.x)
    cov = s2 * np.linalg.inv(J.T @ J)
    return res.x, cov, math.sqrt(s2), dof


def predictive(center, jac, cov, *, residual_scale, df_resid, error_mode):  # the pre-v2 form, kept as a test oracle of Predictive
    """Predictive distribution of a new observation at fitted values ``center``.

    Parameters
    ----------
    center : array_like
        Fitted response ``f`` (GiB).
    jac : ndarray, shape (n, p)
        ``d f / d theta`` at the estimates.
    cov : ndarray, shape (p, p)
        Parameter covariance from the coefficient file.
    residual_scale : float
        ``s``, the residual standard deviation on the error-mode scale.
    df_resid : float
        Residual degrees of freedom (Student t).
    error_mode : {"absolute", "log", "relative"}

    Returns
    -------
    Predictive
    """
    if error_mode not in ERROR_MODES:
        raise ValueError(f"unknown error mode {error_mode!r}; expected one of {ERROR_MODES}")
    f = np.asarray(center, dtype=float)
    var_mean = delta_variance(jac, cov).reshape(f.shape) if np.size(jac) else np.zeros(f.shape)
    s2 = float(residual_scale) ** 2 if residual_scale is not None else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        if error_mode == "absolute":
            d2 = var_mean + s2
            rse = np.sqrt(var_mean) / np.abs(f)
        else:
            rel = var_mean / (f * f)
            d2 = np.log1p(rel) + s2
            rse = np.sqrt(rel)
    df = float(df_resid) if df_resid is not None and float(df_resid) > 0 else math.inf
    return Predictive(f, np.sqrt(d2), df, error_mode, 0.0, rse)


def _predictive(spec, theta, cov, s, dof, mode, x):
    f = response_offset_gib(x) + spec.evaluate(x, theta)
    return predictive(f, spec.jacobian(x, theta), cov, residual_scale=s, df_resid=dof, error_mode=mode)


@pytest.mark.parametrize("mode", ["log", "relative", "absolute"])
@pytest.mark.parametrize("spec_name", ["physical", "seed"])
def test_calibration_90pct_intervals(spec_name, mode):
    """SIMULATED: 200 fits of 20 profiles each, 50 fresh draws per fit; 90 % intervals
    cover 87-93 % of the 10 000 fresh draws. With 20 profiles the parameter uncertainty is a
    large part of the predictive variance: intervals without it cover only 82-86 %."""
    spec, theta0 = TRUE[spec_name]
    rng = np.random.default_rng(20240601 + len(mode) + len(spec_name))
    covered, total = 0, 0
    pit = []
    for _ in range(200):
        x = _features(rng, 20)
        f0 = response_offset_gib(x) + spec.evaluate(x, theta0)
        y = _draw(f0, mode, SCALE[mode], rng)
        theta, cov, s, dof = _fit(spec, x, y, mode, theta0 * 1.1)
        xn = _features(rng, 50)
        fn = response_offset_gib(xn) + spec.evaluate(xn, theta0)
        yn = _draw(fn, mode, SCALE[mode], rng)
        dist = _predictive(spec, theta, cov, s, dof, mode, xn)
        lo, hi = dist.interval(0.10)
        covered += int(np.sum((yn >= lo) & (yn <= hi)))
        total += yn.size
        pit.append(dist.cdf(yn))  # predicted P(fits) at a capacity equal to the draw
    coverage = covered / total
    assert COVERAGE_BAND[0] <= coverage <= COVERAGE_BAND[1], coverage
    # fit probabilities are calibrated: P(predicted P(Y <= y_new) <= p) = p (sd about 0.01
    # from the binomial and the 200 fits)
    pit = np.concatenate(pit)
    for p in (0.05, 0.25, 0.5, 0.75, 0.95):
        assert abs(np.mean(pit <= p) - p) < 0.035, (p, np.mean(pit <= p))


@pytest.mark.parametrize("mode", ["log", "relative"])
def test_intervals_asymmetric_and_positive(mode):
    x = _features(np.random.default_rng(3), 50)
    theta = TRUE["physical"][1]
    cov = np.diag([0.01, 0.02, 0.001, 0.001, 0.01])
    dist = _predictive(PHYSICAL, theta, cov, 0.2, 30, mode, x)
    lo, hi = dist.interval(0.10)
    f = dist.median
    assert np.all(lo > 0) and np.all(hi - f > f - lo)


@pytest.mark.parametrize("mode", ["log", "relative", "absolute"])
def test_cdf_inverts_quantile(mode):
    x = _features(np.random.default_rng(4), 20)
    dist = _predictive(PHYSICAL, TRUE["physical"][1], np.eye(5) * 1e-3, 0.1, 12, mode, x).shifted(3.0)
    for p in (0.02, 0.5, 0.9, 0.995):
        assert np.allclose(dist.cdf(dist.quantile(p)), p, rtol=0, atol=1e-9)


def test_zero_scale_is_a_step():
    d = Predictive(np.array([2.0]), np.array([0.0]), 10.0, "log", 1.0)
    assert d.cdf(3.0)[0] == 1.0 and d.cdf(2.999)[0] == 0.0
    assert d.quantile(0.05)[0] == pytest.approx(3.0)


def test_plus_exact_without_spread_and_sound_with_it():
    rng = np.random.default_rng(5)
    a = Predictive(np.array([10.0]), np.array([0.05]), 40.0, "log", np.array([2.0]))
    b0 = Predictive(np.array([1.5]), np.array([0.0]), 8.0, "absolute", 0.0)
    s = a.plus(b0)
    assert s.quantile(0.95)[0] == pytest.approx(a.quantile(0.95)[0] + 1.5)
    # with spread: Monte Carlo of the independent sum, quantiles within 2 %
    b = Predictive(np.array([1.5]), np.array([0.3]), 8.0, "absolute", 0.0)
    n = 400_000
    ya = 2.0 + 10.0 * np.exp(0.05 * rng.standard_t(40.0, n))
    yb = 1.5 + 0.3 * rng.standard_t(8.0, n)
    mc = np.quantile(ya + yb, [0.05, 0.95])
    got = [a.plus(b).quantile(0.05)[0], a.plus(b).quantile(0.95)[0]]
    assert np.allclose(got, mc, rtol=0.02)


def test_delta_variance_matches_explicit_product():
    rng = np.random.default_rng(6)
    J = rng.standard_normal((7, 3))
    A = rng.standard_normal((3, 3))
    C = A @ A.T
    assert np.allclose(intervals.delta_variance(J, C), np.diag(J @ C @ J.T))
