"""SIMULATED clustered data with known truth: architectures x runs, a model-level and a
run-level error on the log scale (used by tests/test_mixed.py)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from fitting.stats.mixed import fit_random_intercept
from fitting.stats.nls import NLSModel, Param

TRUE = np.array([0.8, 0.02, 0.05])  # GiB, GiB per sequence, fraction of weights
TAU, SIGMA = 0.15, 0.05             # log units: between architectures, between runs


def mean_gib(x, p):
    return p[0] + p[1] * x["batch"] + p[2] * x["weights"]


def jac_gib(x, p):
    return np.column_stack([np.ones_like(x["batch"]), x["batch"], x["weights"]])


def log_mean(x, p):
    return np.log(mean_gib(x, p))


def log_jac(x, p):
    return jac_gib(x, p) / mean_gib(x, p)[:, None]


def design(rng, n_arch=30, n_runs=5):
    weights = np.exp(rng.uniform(np.log(1.0), np.log(140.0), n_arch))
    arch = np.repeat(np.arange(n_arch), n_runs)
    batch = rng.choice([1, 4, 8, 16, 32, 64], size=n_arch * n_runs).astype(float)
    return {"batch": batch, "weights": weights[arch]}, arch


def draw(rng, x, arch):
    eta = rng.normal(0.0, TAU, arch.max() + 1)[arch]
    return np.log(mean_gib(x, TRUE)) + eta + rng.normal(0.0, SIGMA, arch.size)


def model():
    return NLSModel(mean_gib, [Param("c", 0.5, min=0.0), Param("k_batch", 0.01, min=0.0), Param("k_w", 0.01, min=0.0)],
                    jac=jac_gib, name="sim")


def one_replication(rng, alpha_ci=0.05, level_pi=0.90, n_new=200):
    """Coverage indicators of the random-intercept method and of the old independent-errors
    method: (ci_new[k], ci_old[k], pi_new fraction, pi_old fraction)."""
    x, arch = design(rng)
    z = draw(rng, x, arch)
    m = model()
    fit = fit_random_intercept(m, x, z, arch, working_func=log_mean, working_jac=log_jac)
    res, vc = fit.results, fit.components
    p, cov = res.params.to_numpy(), res.cov_params().to_numpy()
    df = vc.df
    t = stats.t.ppf(1 - alpha_ci / 2, df)
    se = np.sqrt(np.diag(cov))
    ci_new = np.abs(p - TRUE) <= t * se
    old = m.fit(x, np.exp(z), error_mode="log", tol=1e-10)
    po, so = old.params.to_numpy(), old.bse.to_numpy()
    ci_old = np.abs(po - TRUE) <= stats.t.ppf(1 - alpha_ci / 2, old.df_resid) * so
    # new architectures, each with its own model-level error
    xn, an = design(rng, n_arch=n_new, n_runs=1)
    zn = draw(rng, xn, an)
    g = log_jac(xn, p)
    var_new = np.einsum("ij,jk,ik->i", g, cov, g) + (vc.tau2 or 0.0) + vc.sigma2
    tq = stats.t.ppf(0.5 + level_pi / 2, df)
    pi_new = np.mean(np.abs(zn - log_mean(xn, p)) <= tq * np.sqrt(var_new))
    go = log_jac(xn, po)
    var_old = np.einsum("ij,jk,ik->i", go, old.cov_params().to_numpy(), go) + old.scale
    pi_old = np.mean(np.abs(zn - log_mean(xn, po)) <= stats.t.ppf(0.5 + level_pi / 2, old.df_resid) * np.sqrt(var_old))
    return ci_new, ci_old, pi_new, pi_old
