"""NIST StRD nonlinear regression: the engine against certified values.

All 27 datasets (``tests/data/nist-strd/``, public-domain NIST reference data; see
``SOURCE.md`` there), each from both certified start points, with finite-difference
Jacobians as a user would fit them. Agreement is measured as the log relative error
(LRE, number of matching significant digits) ``-log10(|est - cert| / |cert|)``.
"""

from __future__ import annotations

import hashlib
import re
import warnings

import numpy as np
import pytest

from _nist_strd import DATA_DIR, MODELS, NAMES, error_mode, model_x, read_nist
from fitting.stats.nls import NLSModel, NLSWarning, Param

#: Minimum significant digits for parameters, standard errors and RSS, by difficulty.
MIN_DIGITS = {"Lower": 6.0, "Average": 6.0, "Higher": 4.0}
#: Lanczos1 is a zero-residual problem (certified RSS 1.4e-25, computed in 128-bit):
#: double precision resolves its RSS, and hence its standard errors (which scale with
#: sqrt(RSS)), to about 3 digits only. Its RSS gets an absolute threshold (rounding the
#: certified parameters to 11 digits already leaves 4e-21), its SEs this many digits.
LANCZOS1_RSS_ABS = 1e-20
LANCZOS1_SE_DIGITS = 2.0
#: Relative agreement of the hand-transcribed model at the certified parameters with the
#: certified RSS (the README reports 1e-10 or better for 26 files).
TRANSCRIPTION_RTOL = 1e-9


def _lre(estimate, certified) -> np.ndarray:
    estimate, certified = np.atleast_1d(estimate).astype(float), np.atleast_1d(certified).astype(float)
    with np.errstate(divide="ignore"):
        return np.minimum(-np.log10(np.abs(estimate - certified) / np.abs(certified)), 15.0)


def _fit(problem, start):
    model = NLSModel(MODELS[problem.name], [Param(f"b{i + 1}", v) for i, v in enumerate(start)],
                     name=problem.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NLSWarning)  # ill-conditioning notes are expected here
        return model.fit(model_x(problem), problem.y, error_mode=error_mode(problem))


def test_all_27_datasets_present_and_unedited():
    readme = (DATA_DIR / "README.md").read_text()
    table = dict(re.findall(r"\| `(\w+)\.dat` \|.*\| `([0-9a-f]{16})` \|", readme))
    assert sorted(table) == NAMES and len(NAMES) == 27
    for name, prefix in table.items():
        digest = hashlib.sha256((DATA_DIR / f"{name}.dat").read_bytes()).hexdigest()
        assert digest[:16] == prefix, name
    levels = [read_nist(n).difficulty for n in NAMES]
    assert (levels.count("Lower"), levels.count("Average"), levels.count("Higher")) == (8, 11, 8)


@pytest.mark.parametrize("name", NAMES)
def test_nist_model_reproduces_certified_rss(name):
    """Guards the hand transcription of the model formulas and the reader."""
    p = read_nist(name)
    f = MODELS[name](model_x(p), p.certified)
    r = np.log(p.y) - np.log(f) if error_mode(p) == "log" else p.y - f
    assert len(p.certified) == len(p.certified_se) == len(p.start1) == len(p.start2)
    if name == "Lanczos1":
        assert r @ r < LANCZOS1_RSS_ABS
    else:
        assert r @ r == pytest.approx(p.certified_rss, rel=TRANSCRIPTION_RTOL)


@pytest.mark.parametrize("start", ["start1", "start2"])
@pytest.mark.parametrize("name", NAMES)
def test_nist_certified_values(name, start):
    p = read_nist(name)
    res = _fit(p, getattr(p, start))
    assert res.converged, res.message
    digits = MIN_DIGITS[p.difficulty]
    assert res.nobs - res.df_resid == len(p.certified)
    assert _lre(res.params.to_numpy(), p.certified).min() >= digits, res.params
    if name == "Lanczos1":
        assert res.rss < LANCZOS1_RSS_ABS
        assert _lre(res.bse.to_numpy(), p.certified_se).min() >= LANCZOS1_SE_DIGITS
    else:
        assert _lre(res.rss, p.certified_rss)[0] >= digits, res.rss
        assert _lre(res.bse.to_numpy(), p.certified_se).min() >= digits, res.bse


def test_nelson_log_mode_equals_absolute_fit_of_log_y():
    """NIST fits Nelson as log(y) = g(x); the engine's log mode with f = exp(g) must agree."""
    p = read_nist("Nelson")
    x = model_x(p)
    g = lambda x, b: b[0] - b[1] * x["x1"] * np.exp(-b[2] * x["x2"])  # noqa: E731
    params = [Param(f"b{i + 1}", v) for i, v in enumerate(p.start2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NLSWarning)
        on_log_y = NLSModel(g, params).fit(x, np.log(p.y))
        log_mode = NLSModel(lambda x, b: np.exp(g(x, b)), params).fit(x, p.y, error_mode="log")
    np.testing.assert_allclose(log_mode.params, on_log_y.params, rtol=10 ** -MIN_DIGITS["Average"])
    np.testing.assert_allclose(log_mode.bse, on_log_y.bse, rtol=10 ** -MIN_DIGITS["Average"])
    assert log_mode.rss == pytest.approx(on_log_y.rss, rel=1e-10)
    # the log-mode likelihood is a density of y: the Jacobian term -sum(log y)
    assert log_mode.loglike == pytest.approx(on_log_y.loglike - np.log(p.y).sum(), rel=1e-10)


@pytest.mark.parametrize("name, settings, reason", [
    ("MGH09", {"max_nfev": 5}, "maximum number of function evaluations"),
    ("MGH10", {"tol": 1e-3}, "away from a stationary point"),
])
def test_stopped_solver_is_reported_as_not_converged(name, settings, reason):
    """A start that does not reach the optimum says so, instead of posing as a solution."""
    p = read_nist(name)
    model = NLSModel(MODELS[name], [Param(f"b{i + 1}", v) for i, v in enumerate(p.start1)], name=name)
    with pytest.warns(NLSWarning, match="not converged"):
        res = model.fit(model_x(p), p.y, **settings)
    assert not res.converged
    assert reason in res.message
    assert _lre(res.params.to_numpy(), p.certified).min() < MIN_DIGITS[p.difficulty]
    assert "converged            : NO" in res.summary().as_text()
