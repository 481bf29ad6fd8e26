"""Numerical core of :mod:`fitting.stats.nls` (private): error-mode transforms, finite
differences, the solver call, the scaled SVD and the convergence check.

Everything here works on plain arrays over the *free* parameters ``q``; names, tables
and inference live in :mod:`fitting.stats.nls`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

ERROR_MODES = ("absolute", "relative", "log")
LOSSES = ("linear", "soft_l1", "huber")

_EPS = float(np.finfo(float).eps)

#: Bates-Watts relative offset above which a stopped solver is not at a stationary point.
RELATIVE_OFFSET_TOL = 1e-3
#: Fits whose working residuals are this small relative to the data are "exact"
#: (zero-residual problems, where the relative-offset criterion is meaningless).
_EXACT_FIT_RTOL = 1e4 * _EPS
#: Relative step of the central finite differences.
_FD_STEP = _EPS ** (1.0 / 3.0)
#: Near zero a parameter's step is taken relative to this fraction of its start value.
_FD_FLOOR = 1e-3
#: Relative accuracy of a central-difference Jacobian (about 30 * eps**(2/3)): singular
#: values below this times the largest are indistinguishable from zero.
_FD_RANK_RTOL = 1e-9


# ----------------------------------------------------------------------- error modes

class NLSWarning(UserWarning):
    """A fit whose estimates or standard errors need care (see the message)."""


def check_data(y, weights, error_mode, loss):
    if error_mode not in ERROR_MODES:
        raise ValueError(f"error_mode must be one of {ERROR_MODES}, got {error_mode!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    y = np.asarray(y, dtype=float)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"y must be a non-empty 1-D array, got shape {y.shape}")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise ValueError(f"y is not finite at rows {bad[:10].tolist()}")
    if error_mode == "relative" and np.any(y == 0):
        raise ValueError(f"error_mode='relative' needs y != 0; zero at rows {np.flatnonzero(y == 0)[:10].tolist()}")
    if error_mode == "log" and np.any(y <= 0):
        raise ValueError(f"error_mode='log' needs y > 0; not at rows {np.flatnonzero(y <= 0)[:10].tolist()}")
    return y, check_weights(weights, y.size, "weights")


def check_weights(weights, n, what):
    if weights is None:
        return None
    w = np.broadcast_to(np.asarray(weights, dtype=float), (n,)).copy()
    if np.any(~np.isfinite(w) | (w <= 0)):
        raise ValueError(f"{what} must be finite and > 0 (rows {np.flatnonzero(~(w > 0))[:10].tolist()})")
    return w


def working_resid(y, f, sqrt_w, mode):
    with np.errstate(divide="ignore", invalid="ignore"):
        if mode == "absolute":
            r = y - f
        elif mode == "relative":
            r = (y - f) / y
        else:
            r = np.log(y) - np.log(f)
    return r if sqrt_w is None else r * sqrt_w


def working_jac(y, f, jac_f, sqrt_w, mode):
    """d r / d q from d f / d q for the error mode (n x k)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = {"absolute": 1.0, "relative": 1.0 / y, "log": 1.0 / f}[mode]
    scale = -np.broadcast_to(scale, y.shape) * (1.0 if sqrt_w is None else sqrt_w)
    return jac_f * scale[:, None]


def response_from_working(f, r_working, sqrt_w, mode):
    """Invert the residual definition: the y whose working residual at ``f`` is ``r``."""
    e = r_working if sqrt_w is None else r_working / sqrt_w
    with np.errstate(divide="ignore", invalid="ignore"):
        if mode == "absolute":
            return f + e
        if mode == "relative":
            return f / (1.0 - e)
        return f * np.exp(e)


def log_jacobian_term(y, weights, mode):
    """log|d r / d y| summed (without sigma): turns the Gaussian log-likelihood of the
    working residuals into a density of y."""
    term = 0.0 if weights is None else 0.5 * float(np.sum(np.log(weights)))
    if mode in ("relative", "log"):
        term -= float(np.sum(np.log(np.abs(y))))
    return term


# ------------------------------------------------------------------- model evaluation
def eval_func(func, x, p, n=None):
    f = np.asarray(func(x, p), dtype=float)
    if n is not None and f.ndim == 0:
        f = np.full(n, float(f))
    if f.ndim != 1 or (n is not None and f.shape[0] != n):
        raise ValueError(f"model function returned shape {f.shape}, expected ({n if n is not None else 'n'},)")
    return f


def fd_jacobian(fun, q, f0, lb, ub, typical):
    """Central differences of ``fun`` at ``q`` (one-sided second order at a bound).

    The step of parameter j is ``eps**(1/3) * max(|q_j|, 1e-3 * typical_j)``, with
    ``typical`` the magnitude of the start value (1 where it is 0).
    """
    J = np.empty((f0.size, q.size))
    for j in range(q.size):
        h = _FD_STEP * max(abs(q[j]), _FD_FLOOR * typical[j])
        qp = q.copy()
        if q[j] - h >= lb[j] and q[j] + h <= ub[j]:
            qp[j] = q[j] + h
            hp = qp[j] - q[j]
            fp = fun(qp)
            qp[j] = q[j] - hp
            J[:, j] = (fp - fun(qp)) / (2.0 * hp)
        else:
            sign = 1.0 if q[j] + 2 * h <= ub[j] else -1.0
            qp[j] = q[j] + sign * h
            hs = qp[j] - q[j]
            f1 = fun(qp)
            qp[j] = q[j] + 2 * hs
            J[:, j] = (-3.0 * f0 + 4.0 * f1 - fun(qp)) / (2.0 * hs)
    return J


class Problem:
    """Model + data for one fit, as functions of the free parameters ``q``."""

    def __init__(self, model, x, y, weights, mode, template):
        self.model, self.x, self.y, self.mode = model, x, y, mode
        self.sqrt_w = None if weights is None else np.sqrt(weights)
        self.free = model._free
        self.template = np.array(template, dtype=float)
        self.lb = np.array([p.min for p in model.params])[self.free]
        self.ub = np.array([p.max for p in model.params])[self.free]
        q0 = self.template[self.free]
        self.typical = np.where(q0 != 0, np.abs(q0), 1.0)
        self._cache_key, self._cache_f = None, None

    def full(self, q):
        p = self.template.copy()
        p[self.free] = q
        return p

    def f(self, q, x=None):
        if x is not None:
            return eval_func(self.model.func, x, self.full(q))
        key = q.tobytes()
        if key != self._cache_key:
            self._cache_f = eval_func(self.model.func, self.x, self.full(q), self.y.size)
            self._cache_key = key
        return self._cache_f

    def jac_f(self, q, x=None):
        """d f / d q at the data (or at ``x``): analytic if the model has one."""
        xx = self.x if x is None else x
        f0 = self.f(q, x)
        if self.model.jac is not None:
            return self.model._jac_free(xx, self.full(q), f0.size)
        return fd_jacobian(lambda qq: self.f(qq, xx), q, f0, self.lb, self.ub, self.typical)

    def resid(self, q):
        return working_resid(self.y, self.f(q), self.sqrt_w, self.mode)

    def jac_r(self, q):
        return working_jac(self.y, self.f(q), self.jac_f(q), self.sqrt_w, self.mode)


def solve_problem(problem, q0, loss, f_scale, tol, max_nfev):
    """Run the TRF solver; returns scipy's OptimizeResult (x, status, message, nfev, ...)."""
    if q0.size == 0:
        return optimize.OptimizeResult(x=q0, status=1, message="no free parameters", nfev=0,
                                       active_mask=np.zeros(0, dtype=int), success=True)
    r0 = problem.resid(q0)
    bad = np.flatnonzero(~np.isfinite(r0))
    if bad.size:
        raise ValueError(f"residuals are not finite at the start values (rows {bad[:10].tolist()}); "
                         f"check p0 and the error mode")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        # trial steps may overflow the model; the solver rejects non-finite residuals
        return optimize.least_squares(
            problem.resid, q0, jac=problem.jac_r, bounds=(problem.lb, problem.ub), method="trf",
            x_scale="jac", loss=loss, f_scale=f_scale, ftol=tol, xtol=tol, gtol=tol,
            max_nfev=max_nfev if max_nfev is not None else 1000 * (q0.size + 1),
        )


def rank_rtol(shape, analytic):
    """Singular values below this times the largest are dropped (see NLSResults Notes)."""
    rtol = _EPS * max(shape)
    return rtol if analytic else max(rtol, _FD_RANK_RTOL)


def scaled_svd(jac_r, rtol):
    """SVD of the column-equilibrated Jacobian: (d, u, s, vt, keep)."""
    norms = np.linalg.norm(jac_r, axis=0)
    d = np.where(norms > 0, norms, 1.0)
    u, s, vt = np.linalg.svd(jac_r / d, full_matrices=False)
    keep = s > rtol * s[0] if s.size and s[0] > 0 else np.zeros(s.size, dtype=bool)
    return d, u, s, vt, keep


def irls_weights(r, loss, f_scale):
    """rho'(z), z = (r / f_scale)**2: the weights that make a robust optimum a weighted
    least-squares stationary point."""
    z = (r / f_scale) ** 2
    if loss == "soft_l1":
        return 1.0 / np.sqrt(1.0 + z)
    if loss == "huber":
        return np.where(z <= 1.0, 1.0, 1.0 / np.sqrt(np.maximum(z, 1.0)))
    return np.ones_like(r)


def relative_offset(jac_r, r, active, rtol):
    """Bates & Watts (1981) relative offset of the residual vector from the tangent plane."""
    cols = ~active
    if not np.any(cols):
        return 0.0
    _, u, s, _, keep = scaled_svd(jac_r[:, cols], rtol)
    rank = int(np.sum(keep))
    n = r.size
    if rank == 0 or n <= rank:
        return 0.0
    proj = u[:, :rank].T @ r
    along = float(proj @ proj)
    perp = max(float(r @ r) - along, 0.0)
    if perp == 0.0:
        return 0.0 if along == 0.0 else math.inf
    return math.sqrt(along / rank) / math.sqrt(perp / (n - rank))


def check_convergence(opt, jac_r, r, working_size, rtol, loss, f_scale):
    """(converged, message): solver status, then a check that the point is stationary
    (for a robust loss: of the IRLS-weighted problem)."""
    if opt.status <= 0:
        why = "maximum number of function evaluations reached" if opt.status == 0 else opt.message
        return False, f"not converged: {why} (nfev={opt.nfev})"
    rms_r = math.sqrt(float(r @ r) / r.size)
    if rms_r <= _EXACT_FIT_RTOL * working_size:
        return True, f"{opt.message} (exact fit: rms working residual {rms_r:.3g})"
    active = np.asarray(opt.active_mask) != 0
    sw = np.sqrt(irls_weights(r, loss, f_scale))
    ro = relative_offset(jac_r * sw[:, None], r * sw, active, rtol)
    if not ro <= RELATIVE_OFFSET_TOL:
        return False, (f"not converged: solver stopped ({opt.message}) away from a stationary "
                       f"point (relative offset {ro:.3g} > {RELATIVE_OFFSET_TOL:g})")
    return True, opt.message
