"""Properties of the NLS engine: statsmodels oracle, seeded coverage, Jacobian, rank
deficiency, bounds, robust loss, bootstrap, nested-model tests.

All data here are SIMULATED with fixed seeds (no real measurements).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from _nist_strd import model_x, read_nist
from fitting.stats.bootstrap import take_rows
from fitting.stats.nls import COND_WARN, NLSModel, NLSWarning, Param, f_test, lr_test

#: Oracle agreement with statsmodels (relative).
ORACLE_RTOL = 1e-8
#: Coverage simulations: repetitions, and tolerance in binomial standard deviations.
N_REPS = 400
COVERAGE_Z = 4.0
#: 90% observation intervals must cover new draws this often (issue 3).
OBS_COVERAGE_RANGE = (0.88, 0.92)
N_NEW_PER_REP = 10  # new draws per repetition: N_REPS * N_NEW_PER_REP >= 2000 points
#: A correct analytic Jacobian agrees with central differences to this (column-relative).
JAC_RTOL = 1e-7


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NLSWarning)
        return fn(*args, **kwargs)


# ------------------------------------------------------------------ statsmodels oracle
def _quadratic():
    return NLSModel(lambda x, p: p[0] + p[1] * x + p[2] * x**2,
                    [Param("a", 0.0), Param("b", 0.0), Param("c", 0.0)], name="quadratic")


def _design(x):
    return np.column_stack([np.ones_like(x), x, x**2])


def _sim_linear(seed=1, n=30, sd=0.3):
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 10.0, n)
    return x, 1.0 + 0.5 * x - 0.03 * x**2 + rng.normal(0.0, sd, n)


X_NEW = np.array([-1.0, 0.0, 2.5, 7.0, 12.0])


@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_linear_model_reproduces_statsmodels_ols(alpha):
    x, y = _sim_linear()
    res = _quadratic().fit(x, y)
    ols = sm.OLS(y, _design(x)).fit()
    assert res.converged
    np.testing.assert_allclose(res.params, ols.params, rtol=ORACLE_RTOL)
    np.testing.assert_allclose(res.bse, ols.bse, rtol=ORACLE_RTOL)
    np.testing.assert_allclose(res.conf_int(alpha), ols.conf_int(alpha), rtol=ORACLE_RTOL)
    np.testing.assert_allclose(res.cov_params(), ols.cov_params(), rtol=ORACLE_RTOL)
    assert res.df_resid == ols.df_resid and res.nobs == ols.nobs
    assert res.scale == pytest.approx(ols.scale, rel=ORACLE_RTOL)
    assert res.rss == pytest.approx(ols.ssr, rel=ORACLE_RTOL)
    for ours, theirs in ((res.loglike, ols.llf), (res.aic, ols.aic), (res.bic, ols.bic)):
        assert ours == pytest.approx(theirs, rel=ORACLE_RTOL)
    ours = res.get_prediction(X_NEW).summary_frame(alpha)
    theirs = ols.get_prediction(_design(X_NEW)).summary_frame(alpha)
    assert list(ours.columns) == list(theirs.columns)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=ORACLE_RTOL)


def test_weighted_fit_reproduces_statsmodels_wls():
    x, y = _sim_linear(seed=2)
    w = np.linspace(0.5, 3.0, x.size)
    res = _quadratic().fit(x, y, weights=w)
    wls = sm.WLS(y, _design(x), weights=w).fit()
    np.testing.assert_allclose(res.params, wls.params, rtol=ORACLE_RTOL)
    np.testing.assert_allclose(res.bse, wls.bse, rtol=ORACLE_RTOL)
    assert res.loglike == pytest.approx(wls.llf, rel=ORACLE_RTOL)
    w_new = np.array([1.0, 2.0, 0.5, 4.0, 1.5])
    ours = res.get_prediction(X_NEW, weights=w_new).summary_frame(0.1)
    theirs = wls.get_prediction(_design(X_NEW), weights=w_new).summary_frame(0.1)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=ORACLE_RTOL)


def test_log_mode_reproduces_ols_on_log_y():
    """f = exp(a + b x) in log mode is OLS of log y; intervals are exp of OLS intervals."""
    rng = np.random.default_rng(3)
    x = np.linspace(0.0, 5.0, 40)
    y = np.exp(0.2 + 0.4 * x + rng.normal(0.0, 0.1, x.size))
    model = NLSModel(lambda x, p: np.exp(p[0] + p[1] * x), [Param("a", 0.0), Param("b", 0.1)])
    res = model.fit(x, y, error_mode="log")
    ols = sm.OLS(np.log(y), sm.add_constant(x)).fit()
    np.testing.assert_allclose(res.params, ols.params, rtol=ORACLE_RTOL)
    np.testing.assert_allclose(res.bse, ols.bse, rtol=ORACLE_RTOL)
    assert res.loglike == pytest.approx(ols.llf - np.log(y).sum(), rel=ORACLE_RTOL)
    ours = res.get_prediction(X_NEW).summary_frame(0.1)
    theirs = ols.get_prediction(sm.add_constant(X_NEW)).summary_frame(0.1)
    np.testing.assert_allclose(ours["mean"], np.exp(theirs["mean"]), rtol=ORACLE_RTOL)
    np.testing.assert_allclose(ours["mean_se"], np.exp(theirs["mean"]) * theirs["mean_se"], rtol=ORACLE_RTOL)
    for col in ("mean_ci_lower", "mean_ci_upper", "obs_ci_lower", "obs_ci_upper"):
        np.testing.assert_allclose(ours[col], np.exp(theirs[col]), rtol=ORACLE_RTOL)
    assert np.all(ours["obs_ci_upper"] - ours["mean"] > ours["mean"] - ours["obs_ci_lower"])  # asymmetric


def test_relative_mode_is_wls_with_inverse_square_weights():
    rng = np.random.default_rng(4)
    x = np.linspace(1.0, 10.0, 35)
    mu = 2.0 + 3.0 * x
    y = mu * (1 + 0.05 * rng.standard_normal(x.size))
    model = NLSModel(lambda x, p: p[0] + p[1] * x, [Param("a", 1.0), Param("b", 1.0)])
    res = model.fit(x, y, error_mode="relative")
    wls = sm.WLS(y, sm.add_constant(x), weights=1.0 / y**2).fit()
    np.testing.assert_allclose(res.params, wls.params, rtol=ORACLE_RTOL)
    np.testing.assert_allclose(res.bse, wls.bse, rtol=ORACLE_RTOL)
    assert res.loglike == pytest.approx(wls.llf, rel=ORACLE_RTOL)  # same density of y
    ours = res.get_prediction(X_NEW).summary_frame(0.1)
    theirs = wls.get_prediction(sm.add_constant(X_NEW)).summary_frame(0.1)
    np.testing.assert_allclose(ours.iloc[:, :4].to_numpy(), theirs.iloc[:, :4].to_numpy(), rtol=ORACLE_RTOL)
    # a new observation's variance uses the predicted mean: sigma^2 f^2
    t = stats.t.ppf(0.95, res.df_resid)
    half = t * np.sqrt(ours["mean_se"] ** 2 + res.scale * ours["mean"] ** 2)
    np.testing.assert_allclose(ours["obs_ci_upper"] - ours["mean"], half, rtol=ORACLE_RTOL)


# ------------------------------------------------------------------ coverage simulations
A_TRUE, K_TRUE = 10.0, 0.3
X_TRAIN = np.linspace(0.0, 10.0, 15)


def _decay_model():
    def f(x, p):
        return p[0] * np.exp(-p[1] * x)

    def jac(x, p):
        e = np.exp(-p[1] * x)
        return np.column_stack([e, -x * p[0] * e])

    return NLSModel(f, [Param("a", 5.0, unit="GiB"), Param("k", 0.1, min=0.0, unit="1/GiB")], jac=jac,
                    name="decay")


def _draw(mode, mu, w, rng, shape):
    """Simulated observations for each error mode (sd 0.3 absolute, 3% relative/log)."""
    e = rng.standard_normal(shape)
    if mode == "absolute":
        return mu + 0.3 * e
    if mode == "weighted":
        return mu + 0.3 * e / np.sqrt(w)
    if mode == "relative":
        return mu * (1 + 0.03 * e)
    return mu * np.exp(0.03 * e)


@pytest.mark.parametrize("mode", ["absolute", "weighted", "relative", "log"])
def test_interval_coverage_simulated(mode):
    """95% parameter CIs contain the truth ~95% of the time; 90% observation intervals
    cover new draws 88-92% of the time (N_REPS * N_NEW_PER_REP = 4000 points)."""
    rng = np.random.default_rng({"absolute": 11, "weighted": 12, "relative": 13, "log": 14}[mode])
    model = _decay_model()
    mu = A_TRUE * np.exp(-K_TRUE * X_TRAIN)
    w = rng.uniform(0.25, 4.0, X_TRAIN.size) if mode == "weighted" else None
    Y = _draw(mode, mu, w, rng, (N_REPS, X_TRAIN.size))
    X_NEW_ALL = rng.uniform(0.0, 10.0, (N_REPS, N_NEW_PER_REP))
    W_NEW = rng.uniform(0.25, 4.0, X_NEW_ALL.shape) if mode == "weighted" else None
    mu_new = A_TRUE * np.exp(-K_TRUE * X_NEW_ALL)
    Y_NEW = _draw(mode, mu_new, W_NEW, rng, X_NEW_ALL.shape)
    fit_mode = {"weighted": "absolute"}.get(mode, mode)
    param_hits = np.zeros(2)
    obs_hits = 0
    for i in range(N_REPS):
        res = model.fit(X_TRAIN, Y[i], weights=w, error_mode=fit_mode)
        assert res.converged, res.message
        ci = res.conf_int(0.05).to_numpy()
        param_hits += (ci[:, 0] <= [A_TRUE, K_TRUE]) & ([A_TRUE, K_TRUE] <= ci[:, 1])
        frame = res.get_prediction(X_NEW_ALL[i], weights=None if W_NEW is None else W_NEW[i]).summary_frame(0.1)
        obs_hits += np.sum((frame["obs_ci_lower"] <= Y_NEW[i]) & (Y_NEW[i] <= frame["obs_ci_upper"]))
    param_cov = param_hits / N_REPS
    obs_cov = obs_hits / (N_REPS * N_NEW_PER_REP)
    band = COVERAGE_Z * math.sqrt(0.95 * 0.05 / N_REPS)
    print(f"{mode}: parameter coverage {param_cov}, observation coverage {obs_cov:.4f}")
    assert np.all(np.abs(param_cov - 0.95) <= band), param_cov
    assert OBS_COVERAGE_RANGE[0] <= obs_cov <= OBS_COVERAGE_RANGE[1], obs_cov


# ---------------------------------------------------------------------- Jacobian
def _mgh09_jac(x, b):
    num, den = x**2 + x * b[1], x**2 + x * b[2] + b[3]
    return np.column_stack([num / den, b[0] * x / den, -b[0] * num * x / den**2, -b[0] * num / den**2])


def test_analytic_jacobian_agrees_with_finite_differences():
    p = read_nist("MGH09")
    f = lambda x, b: b[0] * (x**2 + x * b[1]) / (x**2 + x * b[2] + b[3])  # noqa: E731
    params = [Param(f"b{i + 1}", v) for i, v in enumerate(p.start2)]
    good = NLSModel(f, params, jac=_mgh09_jac)
    for point in (p.start1, p.start2, p.certified):
        assert good.check_jacobian(p.x, point) < JAC_RTOL
    wrong = NLSModel(f, params, jac=lambda x, b: _mgh09_jac(x, b) * [1.0, 1.0, 1.0, 1.001])
    assert wrong.check_jacobian(p.x, p.certified) > 1e-4
    res = _quiet(good.fit, p.x, p.y)
    np.testing.assert_allclose(res.params, p.certified, rtol=1e-6)
    np.testing.assert_allclose(res.bse, p.certified_se, rtol=1e-6)
    # a Jacobian over the free parameters only is accepted too
    part = NLSModel(f, [Param("b1", p.certified[0], vary=False)] + params[1:],
                    jac=lambda x, b: _mgh09_jac(x, b)[:, 1:])
    assert part.check_jacobian(p.x, p.certified) < JAC_RTOL


# ------------------------------------------------------------- identification, bounds
def test_rank_deficient_design_warns_and_gives_nan_for_unidentified():
    x, y = _sim_linear(seed=5)
    model = NLSModel(lambda x, p: (p[0] + p[1]) * x + p[2], [Param("a", 0.1), Param("b", 0.2), Param("c", 0.0)])
    with pytest.warns(NLSWarning, match="rank deficient"):
        res = model.fit(x, y)
    assert list(res.identified) == [False, False, True]
    assert np.isnan(res.bse["a"]) and np.isnan(res.bse["b"])
    assert res.cov_params().loc[["a", "b"]].isna().all().all()
    ols = sm.OLS(y, sm.add_constant(x)).fit()  # the estimable part: a + b and c
    assert res.params["a"] + res.params["b"] == pytest.approx(ols.params[1], rel=ORACLE_RTOL)
    assert res.bse["c"] == pytest.approx(ols.bse[0], rel=ORACLE_RTOL)
    assert res.df_resid == ols.df_resid
    # predictions are estimable functions: finite and equal to OLS
    ours = res.get_prediction(X_NEW).summary_frame()
    theirs = ols.get_prediction(sm.add_constant(X_NEW)).summary_frame()
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=ORACLE_RTOL)
    assert "not identified" in res.summary().as_text()


def test_prediction_off_the_identified_subspace_has_nan_se():
    rng = np.random.default_rng(6)
    x1 = rng.uniform(0, 1, 30)
    x = {"x1": x1, "x2": 2 * x1}  # collinear in the data
    model = NLSModel(lambda x, p: p[0] * x["x1"] + p[1] * x["x2"], [Param("a", 1.0), Param("b", 1.0)])
    res = _quiet(model.fit, x, 3 * x1 + rng.normal(0, 0.1, 30))
    frame = res.get_prediction({"x1": np.array([1.0, 1.0]), "x2": np.array([2.0, 0.0])}).summary_frame()
    assert np.isfinite(frame["mean_se"].iloc[0]) and np.isnan(frame["mean_se"].iloc[1])


def test_parameter_without_effect_is_unidentified():
    x, y = _sim_linear(seed=7)
    model = NLSModel(lambda x, p: p[0] + p[1] * x + 0.0 * p[2], [Param("a", 0.0), Param("b", 0.0), Param("d", 1.0)])
    with pytest.warns(NLSWarning) as record:
        res = model.fit(x, y)
    text = " ".join(str(r.message) for r in record)
    assert "rank deficient" in text and "did not move from its start value" in text
    assert list(res.identified) == [True, True, False] and np.isnan(res.bse["d"])


def test_fixed_parameter_matches_reduced_model():
    x, y = _sim_linear(seed=8)
    fixed = NLSModel(lambda x, p: p[0] + p[1] * x + p[2] * x**2,
                     [Param("a", 0.0), Param("b", 0.0), Param("c", -0.03, vary=False)]).fit(x, y)
    reduced = sm.OLS(y + 0.03 * x**2, sm.add_constant(x)).fit()
    np.testing.assert_allclose(fixed.params[["a", "b"]], reduced.params, rtol=ORACLE_RTOL)
    np.testing.assert_allclose(fixed.bse[["a", "b"]], reduced.bse, rtol=ORACLE_RTOL)
    assert fixed.params["c"] == -0.03 and np.isnan(fixed.bse["c"])
    assert not fixed.identified["c"] and not fixed.vary["c"]
    assert fixed.df_resid == x.size - 2
    assert "fixed" in fixed.summary().as_markdown()


def test_estimates_are_invariant_to_parameter_units():
    """Expressing a parameter in other units rescales estimate and se, nothing else."""
    rng = np.random.default_rng(9)
    y = A_TRUE * np.exp(-K_TRUE * X_TRAIN) + rng.normal(0, 0.3, X_TRAIN.size)
    base = _decay_model().fit(X_TRAIN, y)
    milli = NLSModel(lambda x, p: p[0] / 1000.0 * np.exp(-p[1] * x),
                     [Param("a_milli", 5000.0), Param("k", 0.1, min=0.0)]).fit(X_TRAIN, y)
    np.testing.assert_allclose(milli.params.to_numpy() / [1000, 1], base.params, rtol=1e-7)
    np.testing.assert_allclose(milli.tvalues, base.tvalues, rtol=1e-6)
    assert milli.condition_number == pytest.approx(base.condition_number, rel=1e-6)


def test_parameter_at_bound_is_flagged():
    x, y = _sim_linear(seed=10)
    model = NLSModel(lambda x, p: p[0] + p[1] * x + p[2] * x**2,
                     [Param("a", 0.0), Param("b", 0.0), Param("c", 0.0, min=0.0, max=1.0)])
    with pytest.warns(NLSWarning, match="at its lower bound"):
        res = model.fit(x, y)
    assert res.converged  # the projected gradient vanishes; the bound is active
    assert res.params["c"] == pytest.approx(0.0, abs=1e-8)
    assert "at lower bound" in res.summary().as_text()


def test_start_at_optimum_is_flagged():
    x, y = _sim_linear(seed=11)
    first = _quadratic().fit(x, y)
    with pytest.warns(NLSWarning, match="did not move from its start value"):
        _quadratic().fit(x, y, p0=first.params)


def test_ill_conditioned_jacobian_warns_with_condition_number():
    """A quadratic far from the origin: nearly collinear columns even after scaling.
    (Analytic Jacobian: with finite differences a condition number above 1e9 already
    counts as rank deficient.)"""
    x = np.linspace(1e4, 1e4 + 1.0, 25)
    y = 1.0 + 1e-3 * x + np.random.default_rng(12).normal(0, 1e-3, x.size)
    model = NLSModel(_quadratic().func, _quadratic().params, jac=lambda x, p: _design(x))
    with pytest.warns(NLSWarning, match="ill-conditioned Jacobian: condition number"):
        res = model.fit(x, y)
    assert res.condition_number > COND_WARN and res.rank == 3 and res.converged
    assert "ill-conditioned" in res.summary().as_text()


# ---------------------------------------------------------------------- robust loss
def test_robust_loss_resists_outliers_and_reports_no_standard_errors():
    rng = np.random.default_rng(13)
    y = A_TRUE * np.exp(-K_TRUE * X_TRAIN) + rng.normal(0, 0.1, X_TRAIN.size)
    y[[2, 7]] += 6.0
    plain = _decay_model().fit(X_TRAIN, y)
    with pytest.warns(NLSWarning, match="not valid for a robust loss"):
        robust = _decay_model().fit(X_TRAIN, y, loss="soft_l1", f_scale=0.2)
    truth = np.array([A_TRUE, K_TRUE])
    assert np.all(np.abs(robust.params - truth) < np.abs(plain.params - truth))
    assert np.all(np.abs(robust.params - truth) / truth < 0.03)
    assert robust.bse.isna().all() and math.isnan(robust.loglike) and math.isnan(robust.aic)
    frame = robust.get_prediction(X_NEW).summary_frame()
    assert frame["mean"].notna().all() and frame["mean_ci_lower"].isna().all()


# ------------------------------------------------------------------ nested-model tests
def test_f_and_lr_tests_reproduce_statsmodels():
    x, y = _sim_linear(seed=14, sd=1.0)
    full = _quadratic().fit(x, y)
    line = NLSModel(lambda x, p: p[0] + p[1] * x, [Param("a", 0.0), Param("b", 0.0)]).fit(x, y)
    ols_full, ols_line = sm.OLS(y, _design(x)).fit(), sm.OLS(y, sm.add_constant(x)).fit()
    f_stat, f_p, f_df = ols_full.compare_f_test(ols_line)
    ft = f_test(line, full)
    assert (ft.df_num, ft.df_denom) == (f_df, ols_full.df_resid)
    assert ft.statistic == pytest.approx(f_stat, rel=ORACLE_RTOL)
    assert ft.pvalue == pytest.approx(f_p, rel=ORACLE_RTOL)
    lr_stat, lr_p, lr_df = ols_full.compare_lr_test(ols_line)
    lt = lr_test(line, full)
    assert lt.df == lr_df
    assert lt.statistic == pytest.approx(lr_stat, rel=ORACLE_RTOL)
    assert lt.pvalue == pytest.approx(lr_p, rel=ORACLE_RTOL)
    assert lt._fields == ("statistic", "df", "pvalue")
    assert ft._fields == ("statistic", "df_num", "df_denom", "pvalue")


def test_nested_tests_warn_when_fits_are_not_comparable():
    x, y = _sim_linear(seed=15)
    y = y + 5.0  # positive, for the log mode
    full = _quadratic().fit(x, y)
    line_log = NLSModel(lambda x, p: p[0] + p[1] * x, [Param("a", 5.0), Param("b", 0.1)]).fit(
        x, y, error_mode="log")
    line_short = NLSModel(lambda x, p: p[0] + p[1] * x, [Param("a", 0.0), Param("b", 0.0)]).fit(x[:-3], y[:-3])
    for test, restricted, expected in ((lr_test, line_log, "different error modes"),
                                       (f_test, line_short, "different nobs"),
                                       (f_test, full, "not smaller")):
        with pytest.warns(NLSWarning) as record:
            test(restricted, full)
        assert any(expected in str(r.message) for r in record), expected


def test_f_test_size_under_the_null_nonlinear():
    """Simulated under the restricted model: p-values below 0.05 about 5% of the time."""
    rng = np.random.default_rng(16)
    mu = A_TRUE * np.exp(-K_TRUE * X_TRAIN)
    Y = mu + 0.3 * rng.standard_normal((N_REPS, X_TRAIN.size))
    full_model = NLSModel(lambda x, p: p[0] * np.exp(-p[1] * x) + p[2], [Param("a", 5.0), Param("k", 0.1),
                                                                          Param("c", 0.0)])
    rejections = 0
    for y in Y:
        restricted, full = _decay_model().fit(X_TRAIN, y), full_model.fit(X_TRAIN, y)
        rejections += f_test(restricted, full).pvalue < 0.05
    band = COVERAGE_Z * math.sqrt(0.05 * 0.95 / N_REPS)
    assert abs(rejections / N_REPS - 0.05) <= band, rejections / N_REPS


# --------------------------------------------------------------------------- bootstrap
def test_take_rows_handles_arrays_dicts_and_frames():
    idx = np.array([2, 0, 2])
    arr = np.arange(8).reshape(4, 2)
    np.testing.assert_array_equal(take_rows(arr, idx, 4), arr[idx])
    d = take_rows({"a": np.arange(4.0), "b": [10, 11, 12, 13], "scale": 2.5}, idx, 4)
    np.testing.assert_array_equal(d["a"], [2.0, 0.0, 2.0])
    np.testing.assert_array_equal(d["b"], [12, 10, 12])
    assert d["scale"] == 2.5
    frame = take_rows(pd.DataFrame({"a": [5, 6, 7, 8]}, index=list("pqrs")), idx, 4)
    assert list(frame["a"]) == [7, 5, 7] and list(frame.index) == [0, 1, 2]
    with pytest.raises(ValueError):
        take_rows(np.arange(3), idx, 4)


def test_case_bootstrap_is_seeded_and_agrees_with_linearised_se():
    x, y = _sim_linear(seed=17, n=80)
    res = _quadratic().fit(x, y)
    boot = res.bootstrap(300, kind="case", seed=5, x_new=X_NEW)
    again = res.bootstrap(300, kind="case", seed=5, x_new=X_NEW)
    other = res.bootstrap(20, kind="case", seed=6)
    pd.testing.assert_frame_equal(boot.params, again.params)
    assert not np.allclose(other.params.iloc[:20].to_numpy(), boot.params.iloc[:20].to_numpy())
    assert boot.n_failed == 0 and len(boot.params) == 300
    np.testing.assert_allclose(boot.bse, res.bse, rtol=0.2)
    ci, boot_ci = res.conf_int(), boot.conf_int()
    assert np.all((boot_ci["lower"] < res.params) & (res.params < boot_ci["upper"]))
    np.testing.assert_allclose(boot_ci["upper"] - boot_ci["lower"], ci["upper"] - ci["lower"], rtol=0.25)
    pred = boot.prediction_frame(0.1)
    delta = res.get_prediction(X_NEW).summary_frame(0.1)
    np.testing.assert_allclose(pred["mean"], delta["mean"])
    np.testing.assert_allclose(pred["mean_se"], delta["mean_se"], rtol=0.25)
    assert np.all((pred["mean_ci_lower"] < pred["mean"]) & (pred["mean"] < pred["mean_ci_upper"]))


def test_residual_bootstrap_in_log_mode():
    rng = np.random.default_rng(18)
    y = A_TRUE * np.exp(-K_TRUE * X_TRAIN) * np.exp(0.05 * rng.standard_normal(X_TRAIN.size))
    res = _decay_model().fit(X_TRAIN, y, error_mode="log")
    boot = res.bootstrap(300, kind="residual", seed=1)
    assert boot.n_failed == 0
    np.testing.assert_allclose(boot.bse, res.bse, rtol=0.2)


def test_group_bootstrap_resamples_whole_groups():
    """Clustered (simulated) data: only resampling whole groups sees the group effects."""
    rng = np.random.default_rng(19)
    groups = np.repeat(np.arange(12), 40)
    x = np.tile(np.linspace(0.0, 1.0, 40), 12)
    y = 2.0 + 0.5 * x + rng.normal(0, 1.0, 12)[groups] + rng.normal(0, 0.1, x.size)
    data = {"x": x, "g": groups}
    model = NLSModel(lambda d, p: p[0] + p[1] * d["x"], [Param("a", 0.0), Param("b", 0.0)])
    res = model.fit(data, y)
    by_case = res.bootstrap(200, kind="case", seed=2)
    by_group = res.bootstrap(200, kind="group", groups=groups, seed=2)
    assert by_group.bse["a"] > 2.0 * by_case.bse["a"]
    # the group bootstrap SE of the intercept is the SE of the mean of 12 group means
    group_means = pd.Series(y - 0.5 * x).groupby(groups).mean()
    assert by_group.bse["a"] == pytest.approx(group_means.std(ddof=1) / math.sqrt(12), rel=0.3)
    with pytest.raises(ValueError, match="needs groups"):
        res.bootstrap(5, kind="group")


def test_bootstrap_progress_bar(capsys):
    x, y = _sim_linear(seed=20)
    _quadratic().fit(x, y).bootstrap(5, seed=0, progress=True)
    assert "bootstrap (case)" in capsys.readouterr().err


# ----------------------------------------------------------------- interface details
def test_guess_hook_and_p0_and_no_mutation():
    x, y = _sim_linear(seed=21)
    x0, y0 = x.copy(), y.copy()
    calls = []

    def guess(x, y):
        calls.append(1)
        return {"a": float(y[0])}

    model = NLSModel(_quadratic().func, _quadratic().params, guess=guess)
    assert model.start_values(x, y)["a"] == y[0]
    res = model.fit(x, y)
    assert calls and res.start["a"] == y[0]
    assert model.fit(x, y, p0={"b": 0.4}).start["b"] == 0.4
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    assert model.params[0].value == 0.0


def test_input_errors_are_clear():
    x, y = _sim_linear(seed=22)
    with pytest.raises(ValueError, match="needs y > 0"):
        _quadratic().fit(x, y - 10, error_mode="log")
    with pytest.raises(KeyError, match="unknown parameter"):
        _quadratic().fit(x, y, p0={"zz": 1.0})
    with pytest.raises(ValueError, match="outside"):
        Param("k", -1.0, min=0.0)
    with pytest.raises(ValueError, match="error_mode"):
        _quadratic().fit(x, y, error_mode="percent")
    with pytest.raises(ValueError, match="returned shape"):
        NLSModel(lambda x, p: np.ones(3), [Param("a", 1.0)]).fit(x, y)
    with pytest.raises(ValueError, match="weights"):
        _quadratic().fit(x, y, weights=-np.ones_like(y))


def test_summary_sections():
    x, y = _sim_linear(seed=23)
    res = NLSModel(_quadratic().func, [Param("a", 0.0, unit="GiB"), Param("b", 0.0, unit="GiB/GiB"),
                                       Param("c", 0.0)], name="quad").fit(x, y)
    text, md = res.summary(alpha=0.1).as_text(), res.summary(alpha=0.1).as_markdown()
    for name in ("a", "b", "c"):
        assert f"  {name} = " in text and f"| {name} |" in md
    assert "+/-" in text and "90% CI" in text and "GiB/GiB" in md
    assert "[correlations]" in text and "C(b, c)" in text
    assert str(res.summary()) == res.summary().as_text()
    nist = read_nist("Misra1a")
    assert model_x(nist).shape == (14,)
