"""Text and markdown summaries of :class:`fitting.stats.nls.NLSResults` (formatting only).

The summary is a value: build it with ``results.summary(alpha)`` and render it with
``as_text()`` or ``as_markdown()``; nothing is printed. Sections, in order: statistics,
parameters (``value +/- se (rel%)`` with the ``1 - alpha`` interval, unit and flags),
correlations with ``|r| >= min_correl``, warnings.
"""

from __future__ import annotations

import math

import numpy as np


def _num(v, digits=6) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{float(v):.{digits}g}"


class NLSSummary:
    """Summary of a fit; ``as_text()``, ``as_markdown()``, ``str()`` gives the text.

    Parameters
    ----------
    results : fitting.stats.nls.NLSResults
    alpha : float
        Intervals are ``1 - alpha`` (Student t on ``df_resid``).
    min_correl : float
        Parameter correlations with absolute value at least this are listed.
    """

    def __init__(self, results, alpha: float = 0.05, min_correl: float = 0.3):
        self.alpha, self.min_correl = alpha, min_correl
        self.title = f"Nonlinear least squares: {results.model.name}"
        self.statistics = self._statistics(results)
        self.param_rows = self._params(results, alpha)
        self.correlations = self._correlations(results, min_correl)
        self.warnings = list(results.warnings)

    @staticmethod
    def _statistics(r):
        return [
            ("error mode", r.error_mode),
            ("loss", r.loss if r.loss == "linear" else f"{r.loss} (f_scale={_num(r.f_scale)})"),
            ("weighted", "yes" if r.weights is not None else "no"),
            ("observations", _num(r.nobs)),
            ("free parameters", _num(int(r.vary.sum()))),
            ("rank", _num(r.rank)),
            ("df_resid", _num(r.df_resid)),
            ("RSS", _num(r.rss)),
            ("residual sd (sigma)", _num(r.sigma)),
            ("log-likelihood", _num(r.loglike)),
            ("AIC", _num(r.aic)),
            ("BIC", _num(r.bic)),
            ("condition number", _num(r.condition_number, 3)),
            ("function evaluations", _num(r.nfev)),
            ("converged", "yes" if r.converged else "NO"),
            ("message", r.message),
        ]

    @staticmethod
    def _params(r, alpha):
        est, se, ci = r.params, r.bse, r.conf_int(alpha)
        at_bound = {name: where for name, where, _ in r._at_bounds()}
        at_start = set(r._at_start())
        rows = []
        for par in r.model.params:
            name = par.name
            flags = []
            if not par.vary:
                flags.append("fixed")
            elif not r.identified[name]:
                flags.append("not identified")
            if name in at_bound:
                flags.append(f"at {at_bound[name]} bound")
            if name in at_start:
                flags.append("at start value")
            v, s = est[name], se[name]
            rel = abs(s / v) * 100 if v != 0 and not math.isnan(s) else math.nan
            rows.append({
                "name": name,
                "value": _num(v),
                "se": _num(s, 4),
                "rel": "" if math.isnan(rel) else f"{rel:.3g}%",
                "lower": _num(ci.loc[name, "lower"]),
                "upper": _num(ci.loc[name, "upper"]),
                "unit": par.unit,
                "flags": ", ".join(flags),
            })
        return rows

    @staticmethod
    def _correlations(r, min_correl):
        cov = r.cov_params().to_numpy()
        sd = np.sqrt(np.diag(cov))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = cov / np.outer(sd, sd)
        names = r.model.param_names
        out = []
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                c = corr[i, j]
                if np.isfinite(c) and abs(c) >= min_correl:
                    out.append((names[i], names[j], float(c)))
        return sorted(out, key=lambda t: -abs(t[2]))

    def _ci_label(self):
        return f"{100 * (1 - self.alpha):g}% CI"

    def as_text(self) -> str:
        """Plain-text report."""
        lines = [self.title, "=" * len(self.title), "", "[statistics]"]
        width = max(len(k) for k, _ in self.statistics)
        lines += [f"  {k:<{width}} : {v}" for k, v in self.statistics]
        lines += ["", f"[parameters]  value +/- se (rel%)   [{self._ci_label()}]"]
        nw = max(len(p["name"]) for p in self.param_rows)
        for p in self.param_rows:
            rel = f" ({p['rel']})" if p["rel"] else ""
            unit = f" {p['unit']}" if p["unit"] else ""
            flags = f"  <- {p['flags']}" if p["flags"] else ""
            lines.append(f"  {p['name']:<{nw}} = {p['value']} +/- {p['se']}{rel}"
                         f"  [{p['lower']}, {p['upper']}]{unit}{flags}")
        if self.correlations:
            lines += ["", f"[correlations]  |r| >= {self.min_correl:g}"]
            lines += [f"  C({a}, {b}) = {c:+.3f}" for a, b, c in self.correlations]
        if self.warnings:
            lines += ["", "[warnings]"] + [f"  - {w}" for w in self.warnings]
        return "\n".join(lines) + "\n"

    def as_markdown(self) -> str:
        """Markdown report (tables for statistics, parameters and correlations)."""
        esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
        lines = [f"### {self.title}", "", "| statistic | value |", "| --- | --- |"]
        lines += [f"| {k} | {esc(v)} |" for k, v in self.statistics]
        lines += ["", f"| parameter | value | se | rel | {self._ci_label()} | unit | flags |",
                  "| --- | ---: | ---: | ---: | --- | --- | --- |"]
        for p in self.param_rows:
            lines.append(f"| {esc(p['name'])} | {p['value']} | {p['se']} | {p['rel']} | "
                         f"[{p['lower']}, {p['upper']}] | {esc(p['unit'])} | {esc(p['flags'])} |")
        if self.correlations:
            lines += ["", f"Correlations with \\|r\\| >= {self.min_correl:g}:", "",
                      "| parameter | parameter | r |", "| --- | --- | ---: |"]
            lines += [f"| {esc(a)} | {esc(b)} | {c:+.3f} |" for a, b, c in self.correlations]
        if self.warnings:
            lines += ["", "**Warnings**", ""] + [f"- {esc(w)}" for w in self.warnings]
        return "\n".join(lines) + "\n"

    def __str__(self):
        return self.as_text()

    def _repr_markdown_(self):
        return self.as_markdown()
