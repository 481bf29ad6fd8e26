r"""Prediction intervals and fit probabilities from a fitted overhead spec (numpy only).

A coefficient file gives, for the selected overhead spec, the estimates
:math:`\hat\theta`, their covariance :math:`\Sigma`, the residual scale :math:`s`, the
residual degrees of freedom :math:`\nu` and the error mode in which the spec was fitted.
For a query with fitted value :math:`f = \mathrm{offset} + \mathrm{overhead}(\hat\theta; x)`
and Jacobian :math:`J = \partial f / \partial\theta` (a row vector), the delta method gives
the variance of the fitted mean :math:`J \Sigma J^\top`, and a new observation is

=============  ============================================  ==========================================
error mode     residual the fit minimised                    new observation :math:`Y`
=============  ============================================  ==========================================
``absolute``   :math:`r = y - f`                              :math:`f + d\,T`, :math:`d^2 = J\Sigma J^\top + s^2`
``log``        :math:`r = \log y - \log f`                    :math:`f\,e^{d T}`, :math:`d^2 \approx J\Sigma J^\top / f^2 + s^2`
``relative``   :math:`r = (y - f) / y`                        :math:`f / (1 - d T)`, :math:`d^2 \approx J\Sigma J^\top / f^2 + s^2`
=============  ============================================  ==========================================

with :math:`T` Student-t on :math:`\nu` degrees of freedom. In ``log`` and ``relative`` mode
the parameter part :math:`J\Sigma J^\top / f^2` enters as :math:`\log(1 + J\Sigma J^\top / f^2)`,
the log-normal moment match of a relative variance: equal to the delta method to first
order, and still finite and sensible where the fitted value is poorly determined (relative
standard error near or above 1, e.g. a term extrapolated far from its data), where the plain
delta method would put the interval over many orders of magnitude. Intervals are the images of
the t quantiles, so they are asymmetric (and positive) in ``log`` and ``relative`` mode;
to first order the observation variance is :math:`d^2 f^2` in both. The probability that
the observation stays below a capacity ``c`` is the same distribution's CDF at ``c``.

Student-t CDF and quantiles are computed here (regularised incomplete beta by Lentz's
continued fraction; quantiles by safeguarded Newton) so that the estimator does not import
scipy; ``tests/test_intervals.py`` checks them against ``scipy.special.stdtr``/``stdtrit``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

ERROR_MODES = ("absolute", "log", "relative")

_CF_EPS = 1e-15
_CF_TINY = 1e-300
_CF_MAXIT = 2000
#: above this many degrees of freedom the normal distribution is used (absolute CDF error
#: below 1e-6; the t continued fraction would need thousands of iterations)
_DF_NORMAL = 1e5


# --- Student t without scipy ---------------------------------------------------------------

def _betacf(a, b, x):
    """Continued fraction of the incomplete beta function (Lentz), vectorised over ``x``."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones_like(x)
    d = 1.0 - qab * x / qap
    d = np.where(np.abs(d) < _CF_TINY, _CF_TINY, d)
    d = 1.0 / d
    h = d.copy()
    for m in range(1, _CF_MAXIT + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = np.where(np.abs(d) < _CF_TINY, _CF_TINY, d)
        c = 1.0 + aa / c
        c = np.where(np.abs(c) < _CF_TINY, _CF_TINY, c)
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = np.where(np.abs(d) < _CF_TINY, _CF_TINY, d)
        c = 1.0 + aa / c
        c = np.where(np.abs(c) < _CF_TINY, _CF_TINY, c)
        d = 1.0 / d
        delta = d * c
        h *= delta
        if np.all(np.abs(delta - 1.0) < _CF_EPS):
            break
    return h


def _betainc(a, b, x, one_minus_x):
    """Regularised incomplete beta :math:`I_x(a, b)` for scalar a, b > 0 and array x in [0, 1].

    ``one_minus_x`` is passed separately so that it keeps full precision near x = 1.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(one_minus_x, dtype=float)
    out = np.empty_like(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_bt = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                  + a * np.log(x) + b * np.log(y))
    bt = np.exp(log_bt)
    direct = x < (a + 1.0) / (a + b + 2.0)
    if np.any(direct):
        out[direct] = bt[direct] * _betacf(a, b, x[direct]) / a
    swap = ~direct
    if np.any(swap):
        out[swap] = 1.0 - bt[swap] * _betacf(b, a, y[swap]) / b
    out[x <= 0.0] = 0.0
    out[y <= 0.0] = 1.0
    return out


def _norm_cdf(z):
    z = np.asarray(z, dtype=float)
    erfc = np.frompyfunc(math.erfc, 1, 1)
    return np.asarray(0.5 * erfc(-z / math.sqrt(2.0)), dtype=float)


def t_cdf(t, df):
    """Student-t cumulative distribution function.

    Parameters
    ----------
    t : float or array_like
        Quantile(s) (dimensionless).
    df : float
        Degrees of freedom (> 0; ``inf`` or very large gives the normal distribution).

    Returns
    -------
    ndarray
        :math:`P(T \\le t)`, same shape as ``t``.

    Examples
    --------
    >>> round(float(t_cdf(0.0, 5)), 12)
    0.5
    """
    t = np.asarray(t, dtype=float)
    df = float(df)
    if not df > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if df > _DF_NORMAL:
        return _norm_cdf(t)
    flat = t.reshape(-1)
    out = np.full(flat.shape, np.nan)
    ok = ~np.isnan(flat)
    tt = flat[ok]
    t2 = tt * tt
    with np.errstate(over="ignore", invalid="ignore"):
        x = df / (df + t2)
        y = t2 / (df + t2)
    y = np.where(np.isinf(tt), 1.0, y)
    x = np.where(np.isinf(tt), 0.0, x)
    half_tail = 0.5 * _betainc(0.5 * df, 0.5, x, y)
    out[ok] = np.where(tt >= 0.0, 1.0 - half_tail, half_tail)
    return out.reshape(t.shape)


def _t_pdf(t, df):
    if df > _DF_NORMAL:
        return math.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)
    logc = math.lgamma(0.5 * (df + 1.0)) - math.lgamma(0.5 * df) - 0.5 * math.log(df * math.pi)
    return math.exp(logc - 0.5 * (df + 1.0) * math.log1p(t * t / df))


def _norm_ppf(p):
    """Standard normal quantile: Acklam's rational approximation + one Halley step."""
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    plow = 0.02425
    if p < plow:
        q = math.sqrt(-2.0 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
    elif p <= 1.0 - plow:
        q = p - 0.5
        r = q * q
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
    else:
        q = math.sqrt(-2.0 * math.log1p(-p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
    e = 0.5 * math.erfc(-x / math.sqrt(2.0)) - p
    u = e * math.sqrt(2.0 * math.pi) * math.exp(0.5 * x * x)
    return x - u / (1.0 + 0.5 * x * u)


def t_ppf(p, df):
    """Student-t quantile function (inverse of :func:`t_cdf`), cached per ``(p, df)``.

    Parameters
    ----------
    p : float
        Probability in (0, 1).
    df : float
        Degrees of freedom (> 0; ``inf`` gives the normal quantile).

    Returns
    -------
    float
        ``t`` with :math:`P(T \\le t) = p`.

    Examples
    --------
    >>> round(t_ppf(0.975, 1e9), 6)
    1.959964
    """
    return _t_ppf(float(p), float(df))


@lru_cache(maxsize=1024)
def _t_ppf(p, df):
    if not 0.0 < p < 1.0:
        if p == 0.0:
            return -math.inf
        if p == 1.0:
            return math.inf
        raise ValueError(f"probability must lie in [0, 1], got {p}")
    if not df > 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if df > _DF_NORMAL:
        return _norm_ppf(p)
    if p > 0.5:
        return -_t_ppf(1.0 - p, df)
    if p == 0.5:
        return 0.0
    if df == 1.0:  # Cauchy; -1/tan(pi p) keeps precision for small p
        return -1.0 / math.tan(math.pi * p)
    if df == 2.0:
        return (2.0 * p - 1.0) / math.sqrt(2.0 * p * (1.0 - p))
    z = _norm_ppf(p)
    # Cornish-Fisher start, then Newton safeguarded by a bracket [lo, hi] around the root.
    t = z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df * df)
    lo, hi = -math.inf, 0.0
    for _ in range(100):
        f = float(t_cdf(t, df)) - p
        if f > 0:
            hi = min(hi, t)
        else:
            lo = max(lo, t)
        step = f / max(_t_pdf(t, df), 1e-300)
        t_new = t - step
        if not lo < t_new < hi:
            t_new = 0.5 * (lo + hi) if math.isfinite(lo) else 2.0 * min(t, -1.0)
        if abs(t_new - t) <= 1e-13 * max(1.0, abs(t)):
            return t_new
        t = t_new
    return t


# --- predictive distributions ----------------------------------------------------------------

def delta_variance(jac, cov):
    r"""Row-wise :math:`J \Sigma J^\top` (variance of the fitted mean, squared response units).

    Parameters
    ----------
    jac : ndarray, shape (n, p)
        Derivatives of the prediction with respect to the parameters.
    cov : ndarray, shape (p, p)
        Parameter covariance (rows/columns of unidentified parameters are zero).

    Returns
    -------
    ndarray, shape (n,)
    """
    jac = np.atleast_2d(np.asarray(jac, dtype=float))
    cov = np.asarray(cov, dtype=float)
    keep = np.flatnonzero(np.any(cov != 0, axis=0)) if cov.size else np.array([], int)
    if keep.size == 0:
        return np.zeros(jac.shape[0])
    # (p, n) layout: numpy's matmul of a tall (n, p) array by (p, p) is ~10x slower
    jt = np.ascontiguousarray(jac[:, keep].T)
    return np.maximum(np.einsum("ij,ij->j", cov[np.ix_(keep, keep)] @ jt, jt), 0.0)


@dataclass(frozen=True)
class Predictive:
    """Predictive distribution of ``shift + Y`` with ``Y`` as in the module table.

    Attributes
    ----------
    center : ndarray
        ``f``, the fitted value of the random part (GiB); the median of ``Y``.
    scale : ndarray
        ``d``, the predictive scale on the error-mode scale (log units for ``log``,
        a fraction for ``relative``, GiB for ``absolute``). NaN when unknown.
    df : float
        Student-t degrees of freedom.
    error_mode : str
    shift : ndarray
        A known amount added to ``Y`` (GiB), e.g. the workload KV cache.
    """

    center: np.ndarray
    scale: np.ndarray
    df: float
    error_mode: str
    shift: np.ndarray = 0.0
    #: relative standard error of the fitted value (delta method), where known
    mean_rse: np.ndarray | None = None

    @property
    def median(self):
        """Median of ``shift + Y`` (GiB): the fitted value plus the shift."""
        return np.asarray(self.shift, float) + np.asarray(self.center, float)

    def _transform(self, t):
        f = np.asarray(self.center, float)
        d = np.asarray(self.scale, float)
        if self.error_mode == "absolute":
            y = f + d * t
        elif self.error_mode == "log":
            y = f * np.exp(d * t)
        elif self.error_mode == "relative":
            with np.errstate(divide="ignore", invalid="ignore"):
                den = 1.0 - d * t
                y = np.where(den > 0, f / np.where(den > 0, den, 1.0), np.inf)
        else:
            raise ValueError(f"unknown error mode {self.error_mode!r}; expected one of {ERROR_MODES}")
        return np.asarray(self.shift, float) + y

    def quantile(self, p):
        """Quantile of ``shift + Y`` at probability ``p`` (GiB).

        Parameters
        ----------
        p : float
            Probability in (0, 1).
        """
        return self._transform(t_ppf(p, self.df))

    def interval(self, alpha=0.10):
        """Equal-tailed ``1 - alpha`` prediction interval ``(lower, upper)`` (GiB)."""
        return self.quantile(alpha / 2.0), self.quantile(1.0 - alpha / 2.0)

    def cdf(self, x):
        """:math:`P(\\mathrm{shift} + Y \\le x)` for a capacity ``x`` (GiB, broadcasts)."""
        f = np.asarray(self.center, float)
        d = np.asarray(self.scale, float)
        z = np.asarray(x, float) - np.asarray(self.shift, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.error_mode == "absolute":
                t = (z - f) / d
            elif self.error_mode == "log":
                t = np.where(z > 0, (np.log(np.where(z > 0, z, 1.0)) - np.log(f)) / d, -np.inf)
            elif self.error_mode == "relative":
                t = np.where(z > 0, (1.0 - f / np.where(z > 0, z, 1.0)) / d, -np.inf)
            else:
                raise ValueError(f"unknown error mode {self.error_mode!r}; expected one of {ERROR_MODES}")
        # a zero predictive scale is a step at the median
        t = np.where(d == 0, np.where(z >= f, np.inf, -np.inf), t)
        return t_cdf(t, self.df)

    def shifted(self, amount):
        """The same distribution moved by ``amount`` GiB."""
        return Predictive(self.center, self.scale, self.df, self.error_mode,
                          np.asarray(self.shift, float) + np.asarray(amount, float))

    def absolute_sd(self):
        """First-order (delta-method) standard deviation of ``Y`` in GiB: ``d``, or
        ``f sqrt(rse^2 + s^2)`` in log/relative mode (``d * f`` where ``rse`` is unknown)."""
        d = np.asarray(self.scale, float)
        if self.error_mode == "absolute":
            return d
        f = np.abs(np.asarray(self.center, float))
        if self.mean_rse is None:
            return d * f
        rse2 = np.asarray(self.mean_rse, float) ** 2
        s2 = np.maximum(d * d - np.log1p(rse2), 0.0)  # undo the log-normal moment match
        return f * np.sqrt(rse2 + s2)

    def plus(self, other: "Predictive") -> "Predictive":
        """Approximate distribution of ``self + other`` for independent terms.

        The median of ``other`` joins the shift; its first-order spread is added in
        quadrature to this one's (in GiB) and mapped back to this error mode's scale. The
        degrees of freedom are the smaller of the two (conservative, and the same for every
        row, so a vectorised call equals one-at-a-time calls). Exact when ``other`` has no
        spread.
        """
        a1 = self.absolute_sd()
        a2 = other.absolute_sd()
        a = np.sqrt(a1 * a1 + a2 * a2)
        f = np.asarray(self.center, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = a if self.error_mode == "absolute" else a / np.abs(f)
        df = min(self.df, other.df) if np.any(a2 > 0) else self.df
        return Predictive(f, scale, df, self.error_mode, np.asarray(self.shift, float) + other.median)
