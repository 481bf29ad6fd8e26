r"""Clustered errors: a random intercept per group, estimated by REML, for linear and
nonlinear least squares. Knows no LLM.

The observation model on the working scale (e.g. log units) is

.. math::

    z_{gi} = f(x_{gi}; \theta) + u_g + e_{gi}, \qquad
    u_g \sim N(0, \tau^2), \quad e_{gi} \sim N(0, \sigma^2),

so the errors of one group (all runs of one architecture) share ``u_g``: repeated runs of
one group are not independent evidence. For a fixed ratio :math:`\lambda = \tau^2/\sigma^2`
the covariance of group ``g`` is :math:`\sigma^2 W_g` with :math:`W_g = I + \lambda 11^T`,
whose inverse square root is closed-form,

.. math:: W_g^{-1/2} v = v - \left(1 - (1 + n_g\lambda)^{-1/2}\right)\bar v_g 1,

so generalised least squares is ordinary least squares on whitened residuals.
:func:`reml_random_intercept` estimates :math:`(\sigma^2, \tau^2)` of a linear model by
restricted maximum likelihood (the profile over :math:`\lambda`, closed-form in
:math:`\sigma^2`; checked against statsmodels' ``MixedLM(reml=True)`` in the tests).
:func:`fit_random_intercept` alternates a GLS fit of the nonlinear model at fixed
:math:`\lambda` (bounds respected) with REML on the model linearised at the estimate,
until :math:`\lambda` settles: "MixedLM on the linearised problem", without losing bounds.

Why model-based GLS standard errors and not a cluster-robust sandwich: the frameworks have
3-15 architectures, where CR sandwiches are biased low and unstable (Cameron & Miller
2015, J. Human Resources 50(2)); the random-intercept model is checked instead by
simulation (coefficient and new-group prediction coverage) and by leave-one-group-out
coverage on the real profiles. Inference uses Student t on ``n_groups - k`` degrees of
freedom, the number of groups and not of rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from fitting.stats.nls import NLSModel, Param

__all__ = ["VarianceComponents", "reml_random_intercept", "whiten", "RandomInterceptFit",
           "fit_random_intercept", "MIN_GROUPS_FOR_TAU"]

#: Fewer groups than this: the between-group variance is not estimable.
MIN_GROUPS_FOR_TAU = 3
_LOG_LAMBDA_GRID = np.linspace(-14.0, 9.0, 47)


@dataclass(frozen=True)
class VarianceComponents:
    """REML variance components of a random-intercept model (working units squared).

    ``tau2`` is None when it is not estimable (``note`` says why); ``df`` is the degrees of
    freedom for inference, ``n_groups - k`` (at least 1).
    """

    sigma2: float
    tau2: float | None
    n_groups: int
    nobs: int
    k: int
    reml_loglike: float
    note: str = ""
    #: parameters whose regressor is constant within every group (estimated between groups)
    k_between: int | None = None

    @property
    def lam(self) -> float:
        return 0.0 if not self.tau2 else self.tau2 / self.sigma2

    @property
    def df_between(self) -> int:
        """Degrees of freedom of between-group quantities: groups - between-group parameters."""
        kb = self.k if self.k_between is None else self.k_between
        return max(self.n_groups - kb, 1)

    @property
    def df_within(self) -> int:
        """Degrees of freedom of the within-group variance: rows - groups - within parameters."""
        kb = self.k if self.k_between is None else self.k_between
        return max(self.nobs - self.n_groups - (self.k - kb), 1)

    @property
    def df(self) -> float:
        r"""Welch-Satterthwaite degrees of freedom of ``tau2 + sigma2`` (a new group's
        observation variance): :math:`(\tau^2+\sigma^2)^2 / (\tau^4/\nu_b + \sigma^4/\nu_w)`,
        with :attr:`df_between` and :attr:`df_within`; :attr:`df_between` when ``tau2`` is
        not estimable."""
        if self.tau2 is None:
            return float(self.df_between)
        num = (self.tau2 + self.sigma2) ** 2
        den = self.tau2**2 / self.df_between + self.sigma2**2 / self.df_within
        return float(num / den) if den > 0 else float(self.df_between)


def _codes(groups):
    codes, uniques = pd.factorize(np.asarray(groups), sort=True)
    return codes, len(uniques)


def _group_sums(codes, n_groups, v):
    """Per-group sums of rows of ``v`` (1-d or 2-d)."""
    v = np.asarray(v, dtype=float)
    if v.ndim == 1:
        return np.bincount(codes, weights=v, minlength=n_groups)
    return np.stack([np.bincount(codes, weights=v[:, j], minlength=n_groups) for j in range(v.shape[1])],
                    axis=1) if v.shape[1] else np.zeros((n_groups, 0))


def whiten(v, codes, counts, lam):
    """:math:`W^{-1/2} v` for the block-diagonal ``W_g = I + lam 11^T`` (rows of ``v``)."""
    v = np.asarray(v, dtype=float)
    c = 1.0 - 1.0 / np.sqrt(1.0 + counts * lam)
    means = _group_sums(codes, len(counts), v) / (counts[:, None] if v.ndim == 2 else counts)
    return v - (c[:, None] * means)[codes] if v.ndim == 2 else v - (c * means)[codes]


def _reml_profile(X, z, codes, counts, lam):
    """REML log-likelihood (up to a constant) at ``lam`` and its ``sigma2``."""
    n, p = X.shape
    Xw, zw = whiten(X, codes, counts, lam), whiten(z, codes, counts, lam)
    if p:
        beta, *_ = np.linalg.lstsq(Xw, zw, rcond=None)
        r = zw - Xw @ beta
        sign, logdet_xwx = np.linalg.slogdet(Xw.T @ Xw)
        if sign <= 0:
            return -np.inf, math.nan
    else:
        r, logdet_xwx = zw, 0.0
    rss = float(r @ r)
    dfr = n - p
    if rss <= 0 or dfr <= 0:
        return -np.inf, math.nan
    sigma2 = rss / dfr
    logdet_w = float(np.sum(np.log1p(counts * lam)))
    return -0.5 * (dfr * math.log(sigma2) + logdet_w + logdet_xwx), sigma2


def reml_random_intercept(X, z, groups) -> VarianceComponents:
    """REML estimates of ``sigma2`` (within) and ``tau2`` (between groups) of a linear model.

    Parameters
    ----------
    X : ndarray, shape (n, k)
        Design (full column rank); may have zero columns.
    z : ndarray, shape (n,)
        Response on the working scale.
    groups : array_like, shape (n,)
        Group label of each row.

    Returns
    -------
    VarianceComponents
        ``tau2`` None ("not estimable") with fewer than :data:`MIN_GROUPS_FOR_TAU` groups
        or no replicated group; ``tau2 = 0`` when the REML optimum is on the boundary.
    """
    X = np.asarray(X, dtype=float).reshape(len(z), -1)
    z = np.asarray(z, dtype=float)
    codes, G = _codes(groups)
    counts = np.bincount(codes, minlength=G).astype(float)
    n, k = X.shape
    # a column constant within every group is a between-group parameter
    if k:
        means = _group_sums(codes, G, X) / counts[:, None]
        spread = np.sqrt(np.sum((X - means[codes]) ** 2, axis=0))
        scale = np.maximum(np.linalg.norm(X, axis=0), 1e-300)
        kb = int(np.sum(spread <= 1e-9 * scale))
    else:
        kb = 0
    ll0, s0 = _reml_profile(X, z, codes, counts, 0.0)
    if G < MIN_GROUPS_FOR_TAU or n <= G:
        why = (f"between-model variance not estimable: {G} group(s) (needs >= {MIN_GROUPS_FOR_TAU})"
               if G < MIN_GROUPS_FOR_TAU else "between-model variance not estimable: no group has repeated rows")
        return VarianceComponents(s0, None, G, n, k, ll0, why, kb)
    lls = [(_reml_profile(X, z, codes, counts, math.exp(t))[0], t) for t in _LOG_LAMBDA_GRID]
    best_ll, best_t = max(lls)
    if best_ll > ll0:
        lo, hi = best_t - 0.5, best_t + 0.5
        res = optimize.minimize_scalar(lambda t: -_reml_profile(X, z, codes, counts, math.exp(t))[0],
                                       bounds=(lo, hi), method="bounded", options={"xatol": 1e-8})
        t_hat = float(res.x) if -res.fun >= best_ll else best_t
        ll, s2 = _reml_profile(X, z, codes, counts, math.exp(t_hat))
        if best_t == _LOG_LAMBDA_GRID[0] and ll - ll0 < 1e-9:
            return VarianceComponents(s0, 0.0, G, n, k, ll0, "between-model variance at its boundary (0)", kb)
        return VarianceComponents(s2, math.exp(t_hat) * s2, G, n, k, ll, "", kb)
    return VarianceComponents(s0, 0.0, G, n, k, ll0, "between-model variance at its boundary (0)", kb)


@dataclass
class RandomInterceptFit:
    """A nonlinear fit with a random intercept per group.

    ``results`` is the :class:`fitting.stats.nls.NLSResults` of the final GLS fit on the
    whitened working scale (``params``, ``cov_params()`` = :math:`\\sigma^2 (J_w^T J_w)^{-1}`
    with ``J_w`` the whitened Jacobian); ``components`` the REML variance components at the
    estimate; ``iterations`` the GLS/REML alternations used.
    """

    results: object
    components: VarianceComponents
    iterations: int
    converged: bool


def fit_random_intercept(model, x, z, groups, *, working_func, working_jac, p0=None, tol=1e-10,
                         max_iter=12, lam_tol=1e-5) -> RandomInterceptFit:
    """Fit ``z = working_func(x, p) + u_g + e`` by GLS alternating with REML.

    Parameters
    ----------
    model : fitting.stats.nls.NLSModel
        Supplies the parameters (names, start values, bounds, which vary); its own ``func``
        is not used.
    x : object
        Predictors in the form ``working_func`` takes.
    z : ndarray
        Response on the working scale (e.g. ``log y``).
    groups : array_like
        Group label per row.
    working_func, working_jac : callable
        ``(x, p) -> ndarray`` the mean on the working scale and its Jacobian ``(n, k)``
        over all parameters.
    p0 : array_like, optional
        Start values (default the model's).

    Returns
    -------
    RandomInterceptFit
    """
    z = np.asarray(z, dtype=float)
    codes, G = _codes(groups)
    counts = np.bincount(codes, minlength=G).astype(float)
    params = list(model.params)
    free = np.array([p.vary for p in params])
    p = np.array([p.value for p in params], dtype=float) if p0 is None else np.asarray(p0, dtype=float)
    lam, comps, res, it = 0.0, None, None, 0
    for it in range(1, max_iter + 1):
        lam_used = lam

        def func(xx, q, lam_used=lam_used):
            return whiten(working_func(xx, q), codes, counts, lam_used)

        def jac(xx, q, lam_used=lam_used):
            return whiten(np.asarray(working_jac(xx, q), dtype=float), codes, counts, lam_used)

        start = [Param(pp.name, float(v), min=pp.min, max=pp.max, unit=pp.unit, description=pp.description,
                       vary=pp.vary) for pp, v in zip(params, p)]
        gls = NLSModel(func, start, jac=jac, name=model.name)
        res = gls.fit(x, whiten(z, codes, counts, lam), error_mode="absolute", tol=tol)
        p = res.params.to_numpy(dtype=float)
        ident = res.identified.to_numpy(dtype=bool) & free
        X = np.asarray(working_jac(x, p), dtype=float)[:, ident]
        r = z - np.asarray(working_func(x, p), dtype=float)
        comps = reml_random_intercept(X, r + X @ p[ident], groups)
        lam_new = comps.lam if comps.tau2 is not None else 0.0
        if abs(math.log1p(lam_new) - math.log1p(lam)) < lam_tol:
            lam = lam_new
            break
        lam = lam_new
    converged = bool(res is not None and res.converged and it < max_iter)
    return RandomInterceptFit(results=res, components=comps, iterations=it, converged=converged)
