"""The log-scaling tests: size and power by simulation, verdicts (SIMULATED data only)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _sim_profiles import TRUE_SEED, simulated_observations
from fitting.overhead import log_scaling as hypothesis
from fitting.overhead.fit import fit_spec

ALPHA = 0.05
N_REPS = 300
N_OBS = 60
#: Binomial tolerance of a rejection rate: this many standard deviations.
Z_TOL = 3.0


@pytest.mark.slow
def test_lr_test_of_log_scaling_keeps_its_nominal_size():
    """SIMULATED true log model: the LR test of lambda = 0 rejects about alpha of the time."""
    res = hypothesis.simulate_lambda0_rejections(0.0, n_obs=N_OBS, n_reps=N_REPS, alpha=ALPHA, seed=11)
    n = res["n_valid"]
    assert n >= 0.95 * N_REPS
    tol = Z_TOL * math.sqrt(ALPHA * (1 - ALPHA) / n)
    assert abs(res["rate"] - ALPHA) <= tol, res


@pytest.mark.slow
def test_lr_test_has_power_against_linear_scaling():
    """SIMULATED linear model (lambda = 1) with a batch effect of the seed's size."""
    res = hypothesis.simulate_lambda0_rejections(1.0, n_obs=N_OBS, n_reps=100, alpha=ALPHA, seed=12,
                                                 true_params=(0.8, 0.03, 0.05, 0.0005))
    assert res["rate"] >= 0.8, res


def test_verdict_on_simulated_log_data():
    obs = simulated_observations("transformers", spec="seed", true=TRUE_SEED, sigma_log=0.01, seed=20)
    h = hypothesis.log_scaling_test(obs)
    assert h["testable"]
    lam = h["lambda"]
    assert lam["lr_lambda0"]["pvalue"] > ALPHA
    assert lam["lr_lambda1"]["pvalue"] < ALPHA
    ci = lam["profile_ci"]
    assert ci["lower"] < 0.0 < ci["upper"]
    assert h["batch_term"]["f_test"]["pvalue"] < ALPHA
    assert h["verdict"].startswith("log scaling not rejected") and "linear rejected" in h["verdict"]


def test_verdict_on_simulated_linear_data():
    obs = simulated_observations("transformers", spec="boxcox", true=(0.8, 0.03, 0.05, 0.0005, 1.0),
                                 sigma_log=0.01, seed=22)
    h = hypothesis.log_scaling_test(obs)
    lam = h["lambda"]
    assert lam["lr_lambda0"]["pvalue"] < ALPHA and lam["lr_lambda1"]["pvalue"] > ALPHA
    assert lam["profile_ci"]["lower"] < 1.0 < (lam["profile_ci"]["upper"] or math.inf)
    assert h["verdict"].startswith("log scaling rejected")


def test_profile_interval_agrees_with_wald_interval_for_a_well_determined_lambda():
    obs = simulated_observations("transformers", spec="boxcox", true=(0.8, 0.03, 0.05, 0.004, 0.5),
                                 sigma_log=0.002, seed=23, n_per_model=20)
    h = hypothesis.log_scaling_test(obs)
    lam = h["lambda"]
    wald = (lam["estimate"] - 1.96 * lam["se"], lam["estimate"] + 1.96 * lam["se"])
    ci = lam["profile_ci"]
    assert ci["lower"] == pytest.approx(wald[0], abs=0.3 * lam["se"])
    assert ci["upper"] == pytest.approx(wald[1], abs=0.3 * lam["se"])


def test_constant_batch_size_is_not_testable_and_names_the_study():
    obs = simulated_observations(batch_sizes=(256,))
    h = hypothesis.log_scaling_test(obs)
    assert not h["testable"] and h["batch_term"] is None
    assert h["verdict"].startswith("not testable with these profiles")
    assert "batch-scaling study" in h["verdict"] and h["study_needed"] == hypothesis.BATCH_STUDY


def test_defaulted_batch_sizes_do_not_make_it_testable():
    obs = simulated_observations(batch_sizes=(1, 16, 256))
    t = obs.table
    t["batch_defaulted"] = obs.features["batch_size"] == 256
    obs.features["batch_size"][obs.features["batch_size"] == 16] = 1.0
    h = hypothesis.log_scaling_test(obs)
    assert not h["testable"] and "1 distinct stated value" in h["verdict"]


def test_batch_term_tests_match_their_definitions():
    """F = ((RSS_r - RSS_f)/1) / (RSS_f/df_f), LR = n log(RSS_r/RSS_f) in log error mode."""
    obs = simulated_observations("transformers", sigma_log=0.02, seed=24)
    h = hypothesis.log_scaling_test(obs, profile_ci=False)
    full = fit_spec("seed", obs.features, obs.y)
    restr = fit_spec("seed", obs.features, obs.y, fixed={"batch_scaling": 0.0})
    f = (restr.rss - full.rss) / (full.rss / full.df_resid)
    lr = obs.y.size * math.log(restr.rss / full.rss)
    assert h["batch_term"]["f_test"]["statistic"] == pytest.approx(f, rel=1e-8)
    assert h["batch_term"]["lr_test"]["statistic"] == pytest.approx(lr, rel=1e-8)
    assert h["batch_term"]["pvalue_boundary"] == pytest.approx(h["batch_term"]["lr_test"]["pvalue"] / 2)
    assert np.isfinite(h["lambda"]["lr_lambda0"]["statistic"])


@pytest.mark.slow
def test_clustered_bootstrap_keeps_the_size_where_the_naive_lr_test_does_not():
    """SIMULATED clustered null data (no batch term, a large architecture effect, batch sizes
    that differ between architectures): the boundary-corrected chi2 p-value of the LR test
    rejects far too often, the clustered parametric bootstrap does not."""
    import math as _m

    from fitting.overhead.fit import fit_spec
    from fitting.overhead.log_scaling import _clustered_bootstrap_lr
    from fitting.overhead.specs import SEED
    from scipy import stats as _st

    rng = np.random.default_rng(3)
    n_arch, runs = 8, 6
    arch = np.repeat(np.arange(n_arch), runs)
    w_total = np.repeat(rng.uniform(2.0, 60.0, n_arch), runs)
    b = np.repeat(2.0 ** rng.integers(0, 9, n_arch), runs) * 2.0 ** rng.integers(0, 2, arch.size)
    x = {"weights_gib": w_total, "weights_total_gib": w_total, "kv_gib": np.zeros(arch.size),
         "activations_gib": 0.05 * w_total, "model_mem_gib": 1.05 * w_total, "n_gpus": np.ones(arch.size),
         "tp": np.ones(arch.size), "batch_size": b, "vocab_size": np.full(arch.size, 32000.0)}
    p0 = np.array([0.8, 0.03, 0.0, 0.0])
    h = SEED.uncertain_part(x, p0)
    naive = boot = valid = 0
    for _ in range(24):
        y = SEED.exact_offset(x) + h * np.exp(rng.normal(0, 0.3, n_arch)[arch] + rng.normal(0, 0.03, arch.size))
        full, null = fit_spec(SEED, x, y), fit_spec(SEED, x, y, fixed={"batch_scaling": 0.0})
        grp = fit_spec(SEED, x, y, fixed={"batch_scaling": 0.0}, groups=arch)
        if full.status != "fitted" or null.status != "fitted" or grp.status != "fitted":
            continue
        lr = 2.0 * (full.loglike - null.loglike)
        valid += 1
        naive += int(0.5 * _st.chi2.sf(max(lr, 0.0), 1) < 0.05)
        p = _clustered_bootstrap_lr(grp, x, arch, lr, n_boot=29, seed=0,
                                    fit_null=lambda yy: fit_spec(SEED, x, yy, fixed={"batch_scaling": 0.0}),
                                    fit_full=lambda yy: fit_spec(SEED, x, yy))
        boot += int(p is not None and p < 0.05)
    assert valid >= 20
    assert naive / valid >= 0.3 and boot / valid <= 0.15 and not _m.isnan(boot)


def test_per_series_batch_scaling_on_simulated_series():
    """SIMULATED: two series that vary only the batch. In one the overhead beyond physics
    grows by 0.05 GiB per doubling, in the other it is flat; both totals grow by the physics'
    0.3 GiB per sequence. The per-series analysis finds the first slope (within 3 SE), not
    the second, and the physics' share of the total growth."""
    import pandas as pd

    from fitting.overhead.observations import Observations
    from fitting.overhead.specs import FEATURE_NAMES

    rng = np.random.default_rng(3)
    b = np.tile(np.array([1.0, 2, 4, 8, 16, 32]), 2)
    series = np.repeat(["grows", "flat"], 6)
    kv = 0.3 * b
    w = np.full(b.size, 10.0)
    a = np.full(b.size, 0.2)
    true_slope = np.where(series == "grows", 0.05, 0.0)
    y = w + kv + a + 0.1 + true_slope * np.log2(b) + rng.normal(0, 0.002, b.size)
    feats = {k: np.zeros(b.size) for k in FEATURE_NAMES}
    feats.update(weights_gib=w, kv_gib=kv, activations_gib=a, batch_size=b, n_gpus=np.ones(b.size),
                 model_mem_gib=w + kv + a)
    table = pd.DataFrame({"profile_id": [f"sim-{i}" for i in range(b.size)], "y_gib": y, "series": series,
                          "input_len": 128.0, "output_len": 0.0, "batch_defaulted": False,
                          "model_key": "sim", "arch_key": "sim"})
    obs = Observations("transformers", "growing", {"name": "peak_gib", "description": "simulated"}, table, feats,
                       [], b.size)
    out = hypothesis.per_series_batch_scaling(obs)
    rows = {r["series"]: r for r in out["series"]}
    g, f = rows["grows"], rows["flat"]
    assert abs(g["overhead_per_doubling_gib"] - 0.05) < 3 * g["overhead_per_doubling_se_gib"]
    assert g["overhead_per_doubling_pvalue"] < 0.01 and f["overhead_per_doubling_pvalue"] > 0.01
    assert f["total_per_sequence_gib"] == pytest.approx(0.3, abs=0.002)
    assert out["n_overhead_grows"] == 1 and out["n_series"] == 2
    assert "2 sub-series" in out["summary"]
