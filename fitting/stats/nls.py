"""General nonlinear least squares (NLS) with honest uncertainty.

``NLSModel(func, params).fit(x, y)`` wraps :func:`scipy.optimize.least_squares`
(trust-region reflective with bounds, ``x_scale="jac"``) and returns an
:class:`NLSResults` in the statsmodels spirit: named estimates, linearised standard
errors from the SVD of the Jacobian at the optimum, Student-t intervals with
``df_resid`` degrees of freedom, prediction intervals at new points
(:meth:`NLSResults.get_prediction`), bootstrap (:meth:`NLSResults.bootstrap`) and tests
of nested models (:func:`f_test`, :func:`lr_test`). Nothing here knows about LLMs.

Error modes: the scale on which the errors are taken to be Gaussian with a constant
variance ``sigma**2`` (``w`` are the known inverse-variance ``weights``, 1 by default):

* ``absolute``: working residual ``r_i = sqrt(w_i) (y_i - f_i)``;
  ``y_i ~ N(f_i, sigma**2 / w_i)``.
* ``relative``: ``r_i = sqrt(w_i) (y_i - f_i) / y_i``; the error sd is proportional to
  the size: variance ``sigma**2 y_i**2 / w_i`` in the fit (WLS with weights
  ``w / y**2``), ``sigma**2 f**2 / w`` for a new observation at a predicted ``f``.
* ``log``: ``r_i = sqrt(w_i) (log y_i - log f_i)``; ``log y_i ~ N(log f_i, sigma**2 / w_i)``
  (multiplicative log-normal errors; intervals are asymmetric and positive).

The estimate minimises ``sum(rho(r_i**2))`` (``rho`` the identity for ``loss="linear"``).
Summary text is formatted in :mod:`fitting.stats.nls_report`, the bootstrap lives in
:mod:`fitting.stats.bootstrap`, the numerical core (transforms, finite differences, solver
call, SVD, convergence check) in :mod:`fitting.stats.nls_core`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from fitting.stats.bootstrap import BootstrapResults, run_bootstrap
from fitting.stats.nested_tests import FTestResult, LRTestResult, f_test, lr_test
from fitting.stats.nls_core import (
    ERROR_MODES,
    LOSSES,
    RELATIVE_OFFSET_TOL,
    NLSWarning,
    Problem,
    check_convergence,
    check_data,
    check_weights,
    eval_func,
    fd_jacobian,
    log_jacobian_term,
    rank_rtol,
    scaled_svd,
    solve_problem,
    working_jac,
)
from fitting.stats.nls_report import NLSSummary

__all__ = [
    "Param",
    "NLSModel",
    "NLSResults",
    "NLSPrediction",
    "NLSWarning",
    "BootstrapResults",
    "FTestResult",
    "LRTestResult",
    "f_test",
    "lr_test",
    "ERROR_MODES",
    "LOSSES",
    "DEFAULT_TOL",
    "COND_WARN",
    "RELATIVE_OFFSET_TOL",
]

#: Default ftol = xtol = gtol of the solver (tight, so that certified values are reached).
DEFAULT_TOL = 1e-15
#: Condition number (of the column-scaled Jacobian) above which a fit warns.
COND_WARN = 1e8
#: Squared loading on dropped singular directions above which a parameter is unidentified.
_UNIDENTIFIED_TOL = 1e-10


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Param:
    """One named model parameter.

    Parameters
    ----------
    name : str
        Label of the parameter in every result.
    value : float
        Start value of the fit, and the value used when ``vary=False`` (in ``unit``).
    min, max : float
        Bounds passed to the solver (in ``unit``); ``-inf``/``inf`` for none.
    unit : str
        Unit of the value, e.g. ``"GiB"`` or ``"GiB/GiB"``.
    description : str
        One line for reports.
    vary : bool
        ``False`` keeps the parameter fixed at ``value`` (it gets a NaN standard error).
    """

    name: str
    value: float
    min: float = -np.inf
    max: float = np.inf
    unit: str = ""
    description: str = ""
    vary: bool = True

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Param name must be a non-empty string, got {self.name!r}")
        for field_name in ("value", "min", "max"):
            object.__setattr__(self, field_name, float(getattr(self, field_name)))
        if math.isnan(self.min) or math.isnan(self.max) or self.min >= self.max:
            raise ValueError(f"Param {self.name!r}: need min < max, got [{self.min}, {self.max}]")
        if not math.isfinite(self.value):
            raise ValueError(f"Param {self.name!r}: start value must be finite, got {self.value}")
        if self.vary and not self.min <= self.value <= self.max:
            raise ValueError(
                f"Param {self.name!r}: start value {self.value} outside [{self.min}, {self.max}]"
            )


# ------------------------------------------------------------------------------ model
class NLSModel:
    """A nonlinear regression model ``y ~ func(x, p)`` with named parameters.

    Parameters
    ----------
    func : callable
        ``func(x, p) -> ndarray (n,)``; ``x`` is whatever is passed to :meth:`fit`
        (ndarray, dict of arrays, DataFrame) and ``p`` a float ndarray over *all*
        parameters in ``params`` order (fixed ones included).
    params : sequence of Param
        The parameter table: names, start values, bounds, units, descriptions.
    jac : callable, optional
        Analytic Jacobian ``jac(x, p) -> ndarray (n, n_params)`` (or ``(n, n_free)``)
        of ``func`` with respect to the parameters. Central finite differences otherwise.
        Check it with :meth:`check_jacobian`.
    guess : callable, optional
        Data-driven start values: ``guess(x, y) -> {name: value}`` (may be partial),
        used by :meth:`fit` on top of the ``Param`` values unless ``p0`` says otherwise.
    name : str
        Label for reports.

    Examples
    --------
    >>> import numpy as np
    >>> model = NLSModel(lambda x, p: p[0] * np.exp(-p[1] * x),
    ...                  [Param("a", 1.0), Param("k", 0.1, min=0.0)], name="decay")
    >>> x = np.linspace(0.0, 10.0, 20)
    >>> res = model.fit(x, 3.0 * np.exp(-0.4 * x) * (1 + 0.01 * np.sin(7 * x)))
    >>> bool(res.converged), round(float(res.params["k"]), 2)
    (True, 0.4)
    """

    def __init__(self, func: Callable, params: Sequence[Param], *, jac: Callable | None = None,
                 guess: Callable | None = None, name: str = ""):
        params = tuple(params)
        if not params or not all(isinstance(p, Param) for p in params):
            raise TypeError("params must be a non-empty sequence of Param")
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names in {names}")
        self.func, self.params, self.jac, self.guess = func, params, jac, guess
        self.name = name or getattr(func, "__name__", "") or "model"
        self._free = np.array([p.vary for p in params], dtype=bool)

    @property
    def param_names(self) -> list[str]:
        """Parameter names in order."""
        return [p.name for p in self.params]

    def __repr__(self):
        return f"NLSModel({self.name!r}, params={self.param_names})"

    def _vector(self, values, what="p0") -> np.ndarray:
        """Full parameter vector from the Param values updated by ``values``."""
        p = np.array([par.value for par in self.params], dtype=float)
        if values is None:
            return p
        if isinstance(values, (Mapping, pd.Series)):
            unknown = set(values.keys()) - set(self.param_names)
            if unknown:
                raise KeyError(f"{what}: unknown parameter(s) {sorted(unknown)}; known: {self.param_names}")
            for i, name in enumerate(self.param_names):
                if name in values:
                    p[i] = float(values[name])
            return p
        arr = np.asarray(values, dtype=float).ravel()
        if arr.size == p.size:
            return arr.copy()
        if arr.size == self._free.sum():
            p[self._free] = arr
            return p
        raise ValueError(f"{what} has {arr.size} values; expected {p.size} (all) or {self._free.sum()} (free)")

    def start_values(self, x=None, y=None, p0=None) -> pd.Series:
        """Start values: ``Param.value``, then ``guess(x, y)`` (if given and ``p0`` is None),
        then ``p0`` (array over all or free parameters, or a ``{name: value}`` mapping)."""
        p = self._vector(None)
        if p0 is None and self.guess is not None and y is not None:
            p = self._vector(self.guess(x, y), "guess")
        elif p0 is not None:
            p = self._vector(p0)
        for par, v in zip(self.params, p):
            if par.vary and not par.min <= v <= par.max:
                raise ValueError(f"start value of {par.name!r} = {v} outside its bounds [{par.min}, {par.max}]")
            if not math.isfinite(v):
                raise ValueError(f"start value of {par.name!r} is not finite")
        return pd.Series(p, index=self.param_names, dtype=float)

    def eval(self, x, p=None) -> np.ndarray:
        """``func(x, p)`` with ``p`` a mapping/array (default: the ``Param`` values)."""
        return eval_func(self.func, x, self._vector(p, "p"))

    def _jac_free(self, x, p, n):
        J = np.asarray(self.jac(x, p), dtype=float)
        if J.ndim == 1:
            J = J[:, None]
        if J.shape[0] != n or J.shape[1] not in (len(self.params), int(self._free.sum())):
            raise ValueError(f"jac returned shape {J.shape}; expected ({n}, {len(self.params)}) "
                             f"or ({n}, {int(self._free.sum())})")
        return J[:, self._free] if J.shape[1] == len(self.params) else J

    def check_jacobian(self, x, p=None) -> float:
        """Largest discrepancy between the analytic ``jac`` and central differences.

        Parameters
        ----------
        x : object
            Predictors in the form ``func`` takes.
        p : array_like or mapping, optional
            Parameter values (default: the ``Param`` values).

        Returns
        -------
        float
            ``max_j max_i |J_an[i, j] - J_fd[i, j]| / max_i |J_fd[i, j]|`` over the free
            columns ``j`` (dimensionless); about 1e-9 for a correct Jacobian.
        """
        if self.jac is None:
            raise ValueError(f"model {self.name!r} has no analytic jac to check")
        pv = self._vector(p, "p")
        f0 = eval_func(self.func, x, pv)
        q = pv[self._free]
        lb = np.array([pp.min for pp in self.params])[self._free]
        ub = np.array([pp.max for pp in self.params])[self._free]

        def fun(qq):
            pp = pv.copy()
            pp[self._free] = qq
            return eval_func(self.func, x, pp)

        fd = fd_jacobian(fun, q, f0, lb, ub, np.where(q != 0, np.abs(q), 1.0))
        an = self._jac_free(x, pv, f0.size)
        scale = np.max(np.abs(fd), axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        return float(np.max(np.max(np.abs(an - fd), axis=0) / scale))

    def fit(self, x, y, *, weights=None, error_mode: str = "absolute", loss: str = "linear",
            f_scale: float = 1.0, p0=None, max_nfev: int | None = None,
            tol: float = DEFAULT_TOL) -> NLSResults:
        """Fit the model by (weighted, possibly robust) nonlinear least squares.

        Parameters
        ----------
        x : object
            Predictors, passed unchanged to ``func`` (ndarray with rows = observations,
            dict of 1-D arrays, or DataFrame).
        y : array_like, shape (n,)
            Observed responses (in the unit of ``func``).
        weights : array_like, optional
            Known inverse-variance weights ``w_i`` (dimensionless, > 0): the working
            residuals are multiplied by ``sqrt(w_i)``.
        error_mode : {"absolute", "relative", "log"}
            Scale of the Gaussian errors; see the module docstring.
        loss : {"linear", "soft_l1", "huber"}
            ``"linear"`` is least squares. The robust losses down-weight outliers
            (residuals beyond ``f_scale`` in working units) for screening; the fit
            works, but the Gaussian linearisation behind the covariance does not hold
            for it (as in ``scipy.optimize.curve_fit``, whose Jacobian is then
            loss-modified): ``bse``, ``cov_params``, intervals and
            ``loglike``/``aic``/``bic`` are NaN, with an :class:`NLSWarning`. Use
            :meth:`NLSResults.bootstrap` for uncertainty of robust fits.
        f_scale : float
            Soft margin between inlier and outlier residuals (working units).
        p0 : array_like or mapping, optional
            Start values over all or only the free parameters, or ``{name: value}``.
        max_nfev : int, optional
            Limit on solver function evaluations (default ``1000 * (n_free + 1)``).
        tol : float
            ``ftol = xtol = gtol`` of :func:`scipy.optimize.least_squares`.

        Returns
        -------
        NLSResults

        Notes
        -----
        ``converged`` is True when the solver met a tolerance *and* the Bates-Watts
        relative offset of the working residuals from the tangent plane (over free
        parameters not at a bound; IRLS-weighted for a robust loss) is at most
        ``RELATIVE_OFFSET_TOL``, or the fit is exact to rounding. Otherwise the
        results are returned with ``converged=False`` and an :class:`NLSWarning`.
        """
        y, w = check_data(y, weights, error_mode, loss)
        start = self.start_values(x, y, p0).to_numpy()
        problem = Problem(self, x, y, w, error_mode, start)
        opt = solve_problem(problem, start[self._free], loss, f_scale, tol, max_nfev)
        return NLSResults(problem, start, opt, loss=loss, f_scale=f_scale, tol=tol, max_nfev=max_nfev)


# ---------------------------------------------------------------------------- results
class NLSResults:
    """Results of :meth:`NLSModel.fit`: estimates, linearised inference, diagnostics.

    Attributes
    ----------
    params, bse : pandas.Series
        Estimates and standard errors by parameter name (units of each ``Param``).
        ``bse`` is NaN for fixed and unidentified parameters and for robust losses.
    nobs, df_resid : int
        Number of observations and ``nobs - k`` (``k`` = rank of the Jacobian, the
        number of free parameters when identified).
    rss : float
        Sum of squared working residuals (units of the working residual, squared).
    scale : float
        ``s**2 = rss / df_resid``; ``sigma = sqrt(scale)`` is in working units
        (response units, relative, or log units).
    converged : bool
        See :meth:`NLSModel.fit`; ``message`` says why.
    warnings : list of str
        Everything that was emitted as :class:`NLSWarning` during the fit.

    Notes
    -----
    With ``J`` the Jacobian of the working residuals over the free parameters at the
    optimum, column-scaled ``J D^{-1}`` (``D`` = column norms) and decomposed
    ``J D^{-1} = U S V^T``; singular values below ``rtol * s_max`` are dropped, with
    ``rtol = eps * max(n, k)`` for an analytic Jacobian (as ``curve_fit``) and ``1e-9``,
    the accuracy of central differences, otherwise. Then

    .. math:: \\mathrm{Cov}(\\hat\\theta) = s^2 D^{-1} V_+ S_+^{-2} V_+^T D^{-1},
              \\qquad s^2 = \\mathrm{RSS} / (n - k)

    (the pseudo-inverse of :math:`J^T J`). Parameters with squared loading above
    ``1e-10`` on a dropped direction are unidentified. The column scaling makes the
    rank decision and ``condition_number`` independent of parameter units.

    The Gaussian log-likelihood at the MLE :math:`\\hat\\sigma^2 = \\mathrm{RSS}/n`,
    expressed as a density of :math:`y` (so AIC compares models fitted to the same
    data within one error mode, and relative/log fits of the same :math:`y`):

    .. math:: \\ell = -\\tfrac{n}{2}\\left(\\log(2\\pi\\hat\\sigma^2) + 1\\right)
              + \\tfrac12 \\sum_i \\log w_i - [\\text{relative, log}]\\sum_i \\log|y_i|

    ``aic = 2k - 2 loglike``, ``bic = k log(n) - 2 loglike`` with ``k`` the number of
    estimated (identified free) parameters; the error variance is *not* counted (as in
    statsmodels' OLS), and :func:`lr_test` uses the same ``k``.
    """

    def __init__(self, problem: Problem, start, opt, *, loss, f_scale, tol, max_nfev):
        self.model = problem.model
        self._problem = problem
        self.x, self.y = problem.x, problem.y
        self.weights = None if problem.sqrt_w is None else problem.sqrt_w**2
        self.error_mode, self.loss, self.f_scale = problem.mode, loss, f_scale
        self._tol, self._max_nfev = tol, max_nfev
        self.start = pd.Series(start, index=self.model.param_names, dtype=float)
        q = np.asarray(opt.x, dtype=float)
        self._q = q
        self._p = problem.full(q)
        self._free = self.model._free
        self.nfev, self.status = int(opt.nfev), int(opt.status)
        self._active = np.asarray(opt.active_mask, dtype=int)
        self.fittedvalues = problem.f(q).copy()
        self.wresid = problem.resid(q).copy()
        self._jac_r = (working_jac(self.y, self.fittedvalues, problem.jac_f(q), problem.sqrt_w,
                                    self.error_mode) if q.size else np.zeros((self.y.size, 0)))
        size = {"absolute": np.abs(self.fittedvalues), "relative": 1.0, "log": 1.0}[self.error_mode]
        size = np.broadcast_to(size, self.y.shape) * (1.0 if problem.sqrt_w is None else problem.sqrt_w)
        self._rank_rtol = rank_rtol(self._jac_r.shape, self.model.jac is not None)
        self.converged, self.message = check_convergence(opt, self._jac_r, self.wresid,
                                                  math.sqrt(float(np.mean(size**2))), self._rank_rtol,
                                                  loss, f_scale)
        self.warnings: list[str] = []
        self._diagnose()

    # ---- primary derived quantities
    @property
    def nobs(self) -> int:
        """Number of observations."""
        return int(self.y.size)

    @cached_property
    def _svd(self):
        return scaled_svd(self._jac_r, self._rank_rtol)

    @property
    def rank(self) -> int:
        """Numerical rank of the Jacobian over the free parameters."""
        return int(np.sum(self._svd[4]))

    @property
    def df_model(self) -> int:
        """Number of estimated parameters ``k`` (the rank)."""
        return self.rank

    @property
    def df_resid(self) -> int:
        """Residual degrees of freedom ``nobs - k``."""
        return self.nobs - self.rank

    @property
    def rss(self) -> float:
        """Sum of squared working residuals (working units squared)."""
        return float(self.wresid @ self.wresid)

    @property
    def scale(self) -> float:
        """``s**2 = rss / df_resid`` (NaN when ``df_resid <= 0``)."""
        return self.rss / self.df_resid if self.df_resid > 0 else math.nan

    @property
    def sigma(self) -> float:
        """Residual standard deviation ``sqrt(scale)`` in working units."""
        return math.sqrt(self.scale)

    @property
    def resid(self) -> np.ndarray:
        """Response residuals ``y - fittedvalues`` (response units); see ``wresid`` for the
        working residuals whose squares sum to ``rss``."""
        return self.y - self.fittedvalues

    @cached_property
    def condition_number(self) -> float:
        """Condition number ``s_max / s_min`` of the column-scaled Jacobian (inf if singular)."""
        s = self._svd[2]
        if s.size == 0:
            return math.nan
        return float(s[0] / s[-1]) if s[-1] > 0 else math.inf

    @cached_property
    def _unidentified_free(self) -> np.ndarray:
        d, _, s, vt, keep = self._svd
        if vt.shape[1] == 0:
            return np.zeros(0, dtype=bool)
        v_keep = vt[keep].T
        return 1.0 - np.sum(v_keep**2, axis=1) > _UNIDENTIFIED_TOL

    @cached_property
    def _cov_free_unscaled(self) -> np.ndarray:
        """``(J^T J)^+`` over the free parameters (before multiplying by ``scale``)."""
        d, _, s, vt, keep = self._svd
        v = vt[keep].T
        return (v / s[keep] ** 2) @ v.T / np.outer(d, d)

    @property
    def covariance_valid(self) -> bool:
        """False for robust losses and when ``df_resid <= 0``."""
        return self.loss == "linear" and self.df_resid > 0

    @cached_property
    def identified(self) -> pd.Series:
        """True for free parameters the data determine; False for fixed and unidentified."""
        ident = np.zeros(len(self._p), dtype=bool)
        ident[self._free] = ~self._unidentified_free
        return pd.Series(ident, index=self.model.param_names)

    @property
    def vary(self) -> pd.Series:
        """True for free parameters."""
        return pd.Series(self._free.copy(), index=self.model.param_names)

    @property
    def params(self) -> pd.Series:
        """Estimates (fixed parameters at their values), by name, in parameter units."""
        return pd.Series(self._p.copy(), index=self.model.param_names, dtype=float)

    def cov_params(self) -> pd.DataFrame:
        """Covariance of the estimates (units: product of the two parameters' units).

        Rows and columns of fixed and unidentified parameters are NaN; all NaN for a
        robust loss or without residual degrees of freedom.
        """
        names = self.model.param_names
        cov = np.full((len(names), len(names)), math.nan)
        if self.covariance_valid:
            ok = np.flatnonzero(self._free)[~self._unidentified_free]
            sub = self.scale * self._cov_free_unscaled[np.ix_(~self._unidentified_free, ~self._unidentified_free)]
            cov[np.ix_(ok, ok)] = sub
        return pd.DataFrame(cov, index=names, columns=names)

    @property
    def bse(self) -> pd.Series:
        """Standard errors ``sqrt(diag(cov_params()))`` (NaN: fixed, unidentified, robust)."""
        return pd.Series(np.sqrt(np.diag(self.cov_params().to_numpy())), index=self.model.param_names)

    def _tq(self, alpha):
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        return stats.t.ppf(1 - alpha / 2, self.df_resid) if self.df_resid > 0 else math.nan

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Student-t ``1 - alpha`` intervals ``params -/+ t(1-alpha/2, df_resid) * bse``;
        columns ``lower``, ``upper`` (parameter units)."""
        t = self._tq(alpha)
        est, se = self.params, self.bse
        return pd.DataFrame({"lower": est - t * se, "upper": est + t * se})

    @property
    def tvalues(self) -> pd.Series:
        """``params / bse``."""
        return self.params / self.bse

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided Student-t p-values of ``param == 0``."""
        t = self.tvalues.to_numpy()
        return pd.Series(2 * stats.t.sf(np.abs(t), self.df_resid), index=self.model.param_names)

    @cached_property
    def loglike(self) -> float:
        """Gaussian log-likelihood of ``y`` at the MLE of sigma (see Notes); NaN for robust losses."""
        if self.loss != "linear" or self.rss <= 0:
            return math.nan if self.loss != "linear" else math.inf
        n = self.nobs
        return (-0.5 * n * (math.log(2 * math.pi * self.rss / n) + 1.0)
                + log_jacobian_term(self.y, self.weights, self.error_mode))

    @property
    def aic(self) -> float:
        """Akaike information criterion ``2k - 2 loglike`` (sigma not counted)."""
        return 2 * self.df_model - 2 * self.loglike

    @property
    def bic(self) -> float:
        """Bayesian information criterion ``k log(nobs) - 2 loglike``."""
        return self.df_model * math.log(self.nobs) - 2 * self.loglike

    # ---- diagnostics
    def _diagnose(self):
        msgs = self.warnings
        names = np.array(self.model.param_names)
        if not self.converged:
            msgs.append(f"{self.message}; estimates are not a least-squares solution")
        if self.loss != "linear":
            msgs.append(f"loss={self.loss!r}: the linearised covariance is not valid for a robust loss; "
                        "bse, cov_params, intervals and loglike/AIC/BIC are NaN (use bootstrap)")
        if self.df_resid <= 0:
            msgs.append(f"no residual degrees of freedom (nobs={self.nobs}, rank={self.rank}): "
                        "scale and standard errors are undefined")
        if self._free.any() and np.any(self._unidentified_free):
            bad = names[self._free][self._unidentified_free]
            msgs.append(f"covariance undefined: Jacobian is rank deficient (rank {self.rank} of "
                        f"{int(self._free.sum())} free parameters); not identified: {', '.join(bad)} "
                        "(NaN standard errors)")
        elif self.condition_number > COND_WARN:
            msgs.append(f"ill-conditioned Jacobian: condition number {self.condition_number:.3g} "
                        f"(column-scaled) > {COND_WARN:.0e}; estimates are strongly correlated")
        for name, where, bound in self._at_bounds():
            msgs.append(f"parameter {name} = {self.params[name]:.6g} is at its {where} bound {bound:.6g}; "
                        "its standard error and interval ignore the bound")
        for name in self._at_start():
            msgs.append(f"parameter {name} did not move from its start value {self.start[name]:.6g}; "
                        "check that the model depends on it")
        for m in msgs:
            warnings.warn(f"{self.model.name}: {m}", NLSWarning, stacklevel=4)

    def _at_bounds(self):
        """(name, "lower"|"upper", bound) for free parameters the solver left at a bound."""
        out = []
        for j, i in enumerate(np.flatnonzero(self._free)):
            par, v = self.model.params[i], self._p[i]
            side = int(np.sign(self._active[j])) if self._active.size else 0
            for where, bound, code in (("lower", par.min, -1), ("upper", par.max, 1)):
                if math.isfinite(bound) and (side == code or abs(v - bound) <= 1e-10 * max(abs(bound), abs(v))):
                    out.append((par.name, where, bound))
                    break
        return out

    def _at_start(self):
        moved = np.abs(self._p - self.start.to_numpy()) > 1e-12 * np.abs(self.start.to_numpy())
        return [p.name for p, f, m in zip(self.model.params, self._free, moved) if f and not m]

    # ---- outputs
    def summary(self, alpha: float = 0.05, min_correl: float = 0.3):
        """Report value with ``as_text()``/``as_markdown()``: statistics, parameters as
        ``value +/- se (rel%)`` with ``1 - alpha`` intervals, correlations with
        ``|r| >= min_correl``, and the warnings."""
        return NLSSummary(self, alpha=alpha, min_correl=min_correl)

    def predict(self, x_new) -> np.ndarray:
        """Model values ``func(x_new, params)`` (response units)."""
        return eval_func(self.model.func, x_new, self._p)

    def get_prediction(self, x_new, weights=None) -> NLSPrediction:
        """Delta-method inference for the mean and for a new observation at ``x_new``.

        Parameters
        ----------
        x_new : object
            Predictors in the form ``func`` takes.
        weights : array_like, optional
            Known weights of the new observations (default 1): their error variance is
            ``scale / w`` on the working scale.

        Returns
        -------
        NLSPrediction
            ``summary_frame(alpha)`` gives ``mean, mean_se, mean_ci_lower,
            mean_ci_upper, obs_ci_lower, obs_ci_upper``.
        """
        f = self.predict(x_new)
        w = check_weights(weights, f.size, "prediction weights")
        var_mean = np.full(f.size, math.nan)
        if self.covariance_valid and self._q.size:
            g = self._problem.jac_f(self._q, x_new)
            d, _, s, vt, keep = self._svd
            gs = g / d
            v = vt[keep].T
            off = np.linalg.norm(gs - (gs @ v) @ v.T, axis=1)
            estimable = off <= 1e-7 * np.maximum(np.linalg.norm(gs, axis=1), 1e-300)
            var_mean = np.einsum("ij,jk,ik->i", g, self.scale * self._cov_free_unscaled, g)
            var_mean = np.where(estimable, var_mean, math.nan)
        elif self.covariance_valid:
            var_mean = np.zeros(f.size)
        noise = self.scale / (1.0 if w is None else w)
        index = x_new.index if isinstance(x_new, (pd.DataFrame, pd.Series)) else None
        return NLSPrediction(f, var_mean, noise * np.ones(f.size), self.df_resid, self.error_mode, index)

    def bootstrap(self, n_boot: int = 1000, kind: str = "case", groups=None, seed: int = 0,
                  progress: bool | None = None, x_new=None):
        """Refit on resampled data; percentile intervals for parameters and predictions.

        Parameters
        ----------
        n_boot : int
            Number of replicates.
        kind : {"case", "residual", "group"}
            ``case`` resamples rows with replacement; ``residual`` keeps ``x`` and adds
            resampled, centred working residuals (inflated by ``sqrt(n/df_resid)``) to
            the fit on its error scale; ``group`` resamples whole groups given by
            ``groups`` (one label per row, e.g. all profiles of one model).
        groups : array_like, optional
            Group label per observation (``kind="group"``).
        seed : int
            Seed of :func:`numpy.random.default_rng`.
        progress : bool, optional
            Show a tqdm bar; default: only for ``n_boot >= 200`` on a terminal.
        x_new : object, optional
            Points at which to collect replicate predictions.

        Returns
        -------
        fitting.stats.bootstrap.BootstrapResults
            ``params`` replicates, ``conf_int(alpha)``, ``bse``, ``prediction_frame(alpha)``,
            ``n_failed`` (replicates that did not converge; dropped).
        """
        return run_bootstrap(self, n_boot=n_boot, kind=kind, groups=groups, seed=seed,
                             progress=progress, x_new=x_new)

    def _refit(self, x, y, weights, p_start):
        """Quiet refit with the same settings; full parameter vector or None on failure."""
        try:
            y, w = check_data(y, weights, self.error_mode, self.loss)
            prob = Problem(self.model, x, y, w, self.error_mode, p_start)
            opt = solve_problem(prob, p_start[self._free], self.loss, self.f_scale, self._tol, self._max_nfev)
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            return None
        q = np.asarray(opt.x, dtype=float)
        if opt.status <= 0 or not np.all(np.isfinite(q)):
            return None
        return prob.full(q)

    def __repr__(self):
        return (f"<NLSResults {self.model.name!r}: nobs={self.nobs}, rss={self.rss:.6g}, "
                f"converged={self.converged}, mode={self.error_mode}>")


# ------------------------------------------------------------------------- prediction
class NLSPrediction:
    """Mean and observation intervals at new points (see :meth:`NLSResults.get_prediction`).

    Notes
    -----
    With ``g`` the gradient of ``f(x_new)`` over the free parameters and ``C`` the
    parameter covariance, :math:`\\mathrm{se}_\\mathrm{mean}^2 = g C g^T` (delta method),
    ``t = t(1 - alpha/2, df_resid)`` and ``s^2`` the scale:

    * ``absolute``: mean ``f -/+ t se``; observation ``f -/+ t sqrt(se^2 + s^2/w)``.
    * ``relative``: as absolute with observation variance ``s^2 f^2 / w``.
    * ``log``: on the log scale ``se_log = se / f``; mean interval
      ``f * exp(-/+ t se_log)``, observation ``f * exp(-/+ t sqrt(se_log^2 + s^2/w))``
      (asymmetric, positive). ``mean`` is then ``f``, the *median* of the log-normal
      observation, and ``mean_se = f * se_log`` is the delta-method standard error on
      the original scale (the intervals do not use it).

    Standard errors are NaN at points whose gradient loads on unidentified directions,
    and everywhere for robust fits.
    """

    def __init__(self, mean, var_mean, noise_var, df_resid, error_mode, index=None):
        self.predicted_mean = np.asarray(mean, dtype=float)
        self.var_pred_mean = np.asarray(var_mean, dtype=float)
        self._noise = np.asarray(noise_var, dtype=float)
        self.df = df_resid
        self.error_mode = error_mode
        self._index = index

    @property
    def se_mean(self) -> np.ndarray:
        """Delta-method standard error of the mean, response units."""
        return np.sqrt(self.var_pred_mean)

    def _tq(self, alpha):
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        return stats.t.ppf(1 - alpha / 2, self.df) if self.df > 0 else math.nan

    def conf_int(self, obs: bool = False, alpha: float = 0.05) -> np.ndarray:
        """``(n, 2)`` interval for the mean (``obs=False``) or a new observation."""
        t, f = self._tq(alpha), self.predicted_mean
        if self.error_mode == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                var = self.var_pred_mean / f**2 + (self._noise if obs else 0.0)
            half = t * np.sqrt(var)
            return np.column_stack([f * np.exp(-half), f * np.exp(half)])
        var = self.var_pred_mean + ((self._noise * (f**2 if self.error_mode == "relative" else 1.0)) if obs else 0.0)
        half = t * np.sqrt(var)
        return np.column_stack([f - half, f + half])

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """DataFrame with ``mean, mean_se, mean_ci_lower, mean_ci_upper, obs_ci_lower,
        obs_ci_upper`` (response units), ``1 - alpha`` intervals."""
        ci, oi = self.conf_int(False, alpha), self.conf_int(True, alpha)
        return pd.DataFrame({"mean": self.predicted_mean, "mean_se": self.se_mean,
                             "mean_ci_lower": ci[:, 0], "mean_ci_upper": ci[:, 1],
                             "obs_ci_lower": oi[:, 0], "obs_ci_upper": oi[:, 1]}, index=self._index)
