"""``python -m fitting.refit PROFILES_DIR``: fit every framework, write coefficients and reports.

Thin command line over :func:`refit_frame` (no I/O: profiles DataFrame -> fits and tests,
the entry point for benchmarks) and :func:`refit` (load, fit, write versioned coefficient
files to ``--out`` and markdown reports to ``--reports``). Statistics live in
:mod:`fitting.overhead.fit` and :mod:`fitting.overhead.log_scaling`, files in
:mod:`fitting.estimator.coefficients`, text and figures in :mod:`fitting.report.fit_report`.

Exit status: 0 when at least one framework was fitted, 1 when nothing could be fitted
(every framework unfitted or no profiles), 2 for bad input (missing directory, an invalid
profile with ``--strict``).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fitting.data.frameworks import FRAMEWORKS
from fitting.data.profiles import ProfileError, load_profiles
from fitting.estimator import coefficients
from fitting.overhead import log_scaling as hyp
from fitting.overhead.fit import fit_framework
from fitting.overhead.observations import build_observations
from fitting.overhead.unit_bases import check_inferred_sources, decide_unverified_sources
from fitting.report.dashboard import write_dashboard
from fitting.report.fit_report import write_report

__all__ = ["main", "refit", "refit_frame", "FrameworkOutcome"]


@dataclass
class FrameworkOutcome:
    """What a refit did for one framework."""

    framework: str
    fit: object
    hypothesis: dict
    document: dict | None = None
    write: object = None
    report_path: Path | None = None


def refit_frame(frame, *, frameworks=None, seed: int = 0, cv: bool = True,
                drop_outliers: bool = False, hypothesis: bool = True) -> dict:
    """Fit every framework of a profiles DataFrame (no files read or written).

    Parameters
    ----------
    frame : pandas.DataFrame
        :meth:`fitting.data.profiles.ProfileSet.to_frame` (memory columns in GiB).
    frameworks : sequence of str, optional
        Default: every framework of :data:`fitting.data.frameworks.FRAMEWORKS`.
    seed : int
        Recorded; the fits themselves are deterministic.
    cv : bool
        Leave-one-model-out cross-validation.
    drop_outliers : bool
        Refit without flagged outliers.
    hypothesis : bool
        Run the log-scaling tests.

    Returns
    -------
    dict
        ``{framework: (FrameworkFit, hypothesis dict)}``.
    """

    out = {}
    for fw in (frameworks or FRAMEWORKS):
        obs = build_observations(frame, fw)

        def _spec(obs=obs):
            # the decision is made under the spec the framework's data select (no CV: AIC)
            pre = fit_framework(obs, cv=False)
            return pre.selected_spec if pre.status == "fitted" else None

        fw_frame, unverified = decide_unverified_sources(frame, fw, _spec, base_obs=obs)
        if fw_frame is not frame:
            obs = build_observations(fw_frame, fw)
        cg_obs = build_observations(fw_frame, fw, response="cuda_graph") if fw == "vllm" else None
        fit = fit_framework(obs, cv=cv, drop_outliers=drop_outliers, cuda_graph_obs=cg_obs)
        fit.unit_bases = unverified + check_inferred_sources(
            fw_frame, fit.observations, fit.selected_spec if fit.status == "fitted" else None, framework=fw)
        if fit.status != "fitted":
            h = hyp.not_testable(fit.observations, f"framework unfitted ({fit.reason})")
        elif hypothesis:
            h = hyp.log_scaling_test(fit.observations, seed_fit=fit.specs["seed"],
                                     boxcox_fit=fit.specs.get("boxcox"))
            h["per_series"] = hyp.per_series_batch_scaling(fit.observations)
        else:
            h = None
        out[fw] = (fit, h)
    return out


def refit(profiles_dir, *, out_dir="fitted_params", reports_dir="reports", frameworks=None,
          seed: int = 0, strict: bool = False, drop_outliers: bool = False, cv: bool = True,
          write_reports: bool = True) -> list:
    """Load profiles, fit each framework, write coefficient files and reports.

    Parameters
    ----------
    profiles_dir : str or Path
    out_dir, reports_dir : str or Path
    frameworks : sequence of str, optional
    seed : int
    strict : bool
        Fail on the first invalid profile (default: skip it and list it in the reports).
    drop_outliers, cv : bool
        See :func:`refit_frame`.
    write_reports : bool

    Returns
    -------
    list of FrameworkOutcome
    """

    pset = load_profiles(profiles_dir, strict=strict)
    frame = pset.to_frame()
    fits = refit_frame(frame, frameworks=frameworks, seed=seed, cv=cv, drop_outliers=drop_outliers)
    outcomes = []
    for fw, (fit, h) in fits.items():
        doc = coefficients.build_coefficients(
            fit, h, input_sha=coefficients.input_sha256(frame, fw), seed=seed, skipped_files=pset.skipped)
        res = coefficients.write_coefficients(doc, out_dir)
        written = coefficients.load_coefficients(res.path)
        oc = FrameworkOutcome(fw, fit, h, written, res)
        if write_reports:

            oc.report_path = write_report(fit, written, res.previous, reports_dir,
                                          skipped=pset.skipped, hypothesis=h)
        outcomes.append(oc)
    if write_reports and outcomes:
        # the dashboard validates every framework's latest file, so it follows the refit

        write_dashboard(profiles_dir, out_dir, reports_dir)
    return outcomes


def _pct(v):
    return "-" if v is None else f"{100 * v:.1f}%"


def _summary(outcomes) -> str:
    head = ("framework", "status", "used/total", "models", "spec", "nested LOAO MAPE", "log scaling", "file")
    rows = []
    for oc in outcomes:
        d = oc.document
        spec = d["specs"][d["selected_spec"]]
        cv = (d.get("nested_cv") or spec.get("cv") or {}).get("mape")
        h = oc.hypothesis or {}
        if not h.get("testable"):
            verdict = "not testable"
        elif not (h.get("batch_term") or {}).get("detected", True):
            verdict = "no batch term"
        else:
            lr0 = (h.get("lambda") or {}).get("lr_lambda0") or {}
            p0 = lr0.get("pvalue_bootstrap", lr0.get("pvalue"))
            verdict = "n/a" if p0 is None else ("rejected" if p0 < h["alpha"] else "not rejected")
            verdict += f" (p={p0:.3g})" if p0 is not None else ""
        rows.append((oc.framework, d["status"], f"{d['profiles']['n_used']}/{d['profiles']['n_total']}",
                     str(d["profiles"].get("n_models", "-")), d["selected_spec"], _pct(cv), verdict,
                     f"v{oc.write.version:04d} ({'new' if oc.write.status == 'new' else 'unchanged'})"))
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fitting.refit",
        description="Fit the per-framework overhead model to every profile under PROFILES_DIR and "
                    "write versioned coefficient files (a new version only when data or code "
                    "changed) and markdown reports.")
    p.add_argument("profiles_dir", metavar="PROFILES_DIR", help="folder of profile JSON files (searched recursively)")
    p.add_argument("--out", default="fitted_params", help="coefficient folder (default: fitted_params/)")
    p.add_argument("--reports", default="reports", help="report folder (default: reports/)")
    p.add_argument("--framework", action="append", choices=FRAMEWORKS,
                   help="fit only this framework (repeatable; default: all)")
    p.add_argument("--seed", type=int, default=0, help="random seed recorded in the files (default: 0)")
    p.add_argument("--strict", action="store_true", help="fail on the first invalid profile instead of skipping it")
    p.add_argument("--drop-outliers", action="store_true",
                   help="refit without the profiles flagged by the outlier screening")
    p.add_argument("--no-cv", action="store_true", help="skip leave-one-architecture-out cross-validation")
    p.add_argument("--no-reports", action="store_true", help="write coefficient files only")
    return p


def main(argv=None) -> int:
    """Command line entry point; returns the exit status."""
    args = _parser().parse_args(argv)

    t0 = time.perf_counter()
    try:
        outcomes = refit(args.profiles_dir, out_dir=args.out, reports_dir=args.reports,
                         frameworks=args.framework, seed=args.seed, strict=args.strict,
                         drop_outliers=args.drop_outliers, cv=not args.no_cv,
                         write_reports=not args.no_reports)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ProfileError as exc:
        print(f"error: invalid profile (--strict): {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - t0
    print(_summary(outcomes))
    skipped = {str(s["path"]) for oc in outcomes for s in oc.document["profiles"].get("skipped_files", [])}
    for path in sorted(skipped):
        print(f"skipped invalid profile: {path}", file=sys.stderr)
    for oc in outcomes:
        print(f"{oc.framework}: {oc.write.message}")
    print(f"refit took {elapsed:.1f} s")
    if not any(oc.document["status"] == "fitted" for oc in outcomes):
        n = sum(oc.document["profiles"]["n_used"] for oc in outcomes)
        print(f"error: nothing could be fitted: {n} usable profile(s) in {args.profiles_dir}; each framework "
              "needs enough profiles of enough distinct models (see the status_reason in the files)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
