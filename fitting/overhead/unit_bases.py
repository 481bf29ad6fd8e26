"""Sources whose "MB"/"GB" may be decimal or binary: the data decide the base, or check ours.

A *source* is one page, table or log family (a profile's provenance URL or ref): its figures
share one printing convention. Two kinds reach the fit with a unit base in doubt:

``unverified`` (profile flag ``unit_base_unverified``)
    The converter could not tell whether the source's "MB"/"GB" means 10^6 / 10^9 bytes or
    MiB / GiB, so the profiles were stored at one reading and kept out of the fit. Where that
    is the only reason they are out, :func:`decide_unverified_sources` lets the likelihood
    choose: the unit base is a discrete nuisance, one factor per source
    (:func:`fitting.overhead.fit.fit_with_unit_bases`, the measurement model of
    :mod:`fitting.overhead.measurement`). A source decided at a likelihood ratio of at least
    :data:`~fitting.overhead.measurement.UNIT_BASE_MIN_LR` enters the fit at its chosen base
    (flag ``unit_base_decided``); an undecided one stays out with its likelihood ratio as the
    reason.
``inferred`` (profile flag ``unit_base_inferred``)
    The base was read from the measuring script of a related page or a derivative copy of it,
    not from the script that produced these figures. The documentary reading is kept; the
    data check it: :func:`check_inferred_sources` refits the selected spec without the source
    (its own rows must not vote for their own reading) and asks which base the source's
    figures favour. A decisive disagreement is reported as such, never silently applied.

Only figures that enter the response as a plain sum of printed components can be rescaled
(:data:`fitting.overhead.observations.RESPONSE_FORMS`): a response built through another
measurement model (``allocated_plus_non_torch``, ``reserved_slack``, vLLM's pool difference)
mixes the source's figures with fitted or exact terms, and such rows are left out of the
decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fitting.data.profiles import MEMORY_QUANTITIES
from fitting.data.public_logs import UNIT_BASE_REASON
from fitting.overhead.fit import decide_source_unit_base, fit_spec, fit_with_unit_bases
from fitting.overhead.measurement import UNIT_BASE_FACTORS, UnitBaseDecision
from fitting.overhead.observations import RESPONSE_FORMS, build_observations
from fitting.overhead.specs import get_spec

__all__ = ["SourceUnitBase", "UNIT_BASE_REASON", "decide_unverified_sources", "check_inferred_sources"]

#: Stored unit suffix -> (printed label, reading it was stored at).
_READING = {"mb": ("MB", "decimal"), "gb": ("GB", "decimal"), "mib": ("MB", "binary"), "gib": ("GB", "binary")}
_FLAGS = {"unit_base_unverified": "unverified", "unit_base_inferred": "inferred"}


@dataclass(frozen=True)
class SourceUnitBase:
    """What the data say about one source's unit base.

    Attributes
    ----------
    source : str
        Provenance URL or ref.
    kind : {"unverified", "inferred"}
    label : str or None
        The printed unit ("MB" or "GB"); None where the stored units are mixed or unknown.
    stored_as : str or None
        The reading the profiles were stored at ("decimal" or "binary").
    n_profiles : int
        The source's profiles of this framework.
    n_evaluated : int
        Profiles whose figures entered the likelihood.
    status : str
        ``decided`` / ``undecided`` (unverified sources), ``confirmed`` / ``contradicted`` /
        ``undecided`` (inferred sources), or ``not evaluable``.
    decision : UnitBaseDecision or None
    note : str
        Why a source is not evaluable, or what was done with the decision.
    """

    source: str
    kind: str
    label: str | None
    stored_as: str | None
    n_profiles: int
    n_evaluated: int
    status: str
    decision: UnitBaseDecision | None
    note: str = ""

    def to_dict(self) -> dict:
        d = self.decision
        return {"source": self.source, "kind": self.kind, "label": self.label, "stored_as": self.stored_as,
                "n_profiles": self.n_profiles, "n_evaluated": self.n_evaluated, "status": self.status,
                "chosen": d.base if d is not None else None,
                "log_likelihood_ratio": None if d is None or np.isnan(d.log_lr) else float(d.log_lr),
                "loglik": ({k: float(v) for k, v in d.loglik.items()} if d is not None else None),
                "note": self.note}


# ------------------------------------------------------------------------------ helpers
def _sources(frame, framework, kind):
    """``{source: row positions}`` of one framework's profiles flagged with ``kind``."""
    flag = next(f for f, k in _FLAGS.items() if k == kind)
    fr = frame[frame["framework"] == framework]
    out: dict = {}
    for pos, (flags, src) in zip(fr.index, zip(fr["flags"], fr["source"])):
        if flag in tuple(flags or ()):
            out.setdefault(str(src) if src is not None else "(no source)", []).append(pos)
    return out


def _reading(frame, rows):
    """(label, stored_as) shared by the rows, or (None, None) when their stored units differ."""
    units = {u for u in frame.loc[rows, "measured_units"].tolist() if isinstance(u, str)}
    parts = {p for u in units for p in u.split(",")}
    if len(parts) != 1 or next(iter(parts)) not in _READING:
        return None, None
    return _READING[next(iter(parts))]


def _largest(label) -> float:
    return max(UNIT_BASE_FACTORS[label].values())


def _plain_sum(framework, forms):
    names = {name for name, _ in RESPONSE_FORMS.get(framework, ())}
    return np.array([f in names for f in forms], dtype=bool)


def _other_reasons(text) -> str:
    """The exclusion reason without the unit-base part ('' when that was the only one); the
    reasons are joined by '; ' but may hold semicolons themselves, so the known part is cut."""
    rest = str(text or "").replace(UNIT_BASE_REASON, "")
    return "; ".join(p.strip() for p in rest.split("; ") if p.strip(" ;"))


def _shorten(text, limit=240):
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


# --------------------------------------------------------------------------- unverified
def decide_unverified_sources(frame: pd.DataFrame, framework: str, spec, *, base_obs=None):
    """Let the likelihood choose the unit base of each unverified source.

    Parameters
    ----------
    frame : pandas.DataFrame
        Profiles (:meth:`fitting.data.profiles.ProfileSet.to_frame`).
    framework : str
    spec : str, OverheadSpec, callable or None
        The spec the decision is made under (the framework's selected spec), or a function
        returning it (called only when some source is evaluable; it may return None when the
        framework cannot be fitted, and None leaves every source undecidable).
    base_obs : Observations, optional
        ``build_observations(frame, framework)``, when the caller already has it.

    Returns
    -------
    (pandas.DataFrame, list of SourceUnitBase)
        The frame with every decided source's profiles rescaled to the chosen base, marked
        ``use_in_fit`` and flagged ``unit_base_decided`` (unchanged when nothing was decided),
        and one record per unverified source.
    """
    sources = _sources(frame, framework, "unverified")
    if not sources:
        return frame, []
    obs = base_obs if base_obs is not None else build_observations(frame, framework)
    results: dict = {}
    candidates: dict = {}
    flipped = frame.copy()
    gib_cols = [f"{q}_gib" for q in MEMORY_QUANTITIES if f"{q}_gib" in frame.columns]
    for src, rows in sorted(sources.items()):
        label, stored = _reading(frame, rows)
        others = sorted({o for o in (_other_reasons(frame.at[row, "exclude_reason"]) for row in rows) if o})
        ok = [row for row in rows if not _other_reasons(frame.at[row, "exclude_reason"])]
        if label is None:
            results[src] = SourceUnitBase(src, "unverified", None, None, len(rows), 0, "not evaluable", None,
                                          "stored in mixed or unknown units")
        elif not ok:
            results[src] = SourceUnitBase(src, "unverified", label, stored, len(rows), 0, "not evaluable", None,
                                          _shorten("also out for: " + " | ".join(others)))
        else:
            candidates[src] = (rows, ok, label, stored)
            flipped.loc[ok, "use_in_fit"] = True
            flipped.loc[ok, "exclude_reason"] = None
            # built at the largest reading, so that no row is dropped as "at or below the exact
            # weights + KV" for a reading the likelihood has yet to weigh (there it scores -inf)
            flipped.loc[ok, gib_cols] = flipped.loc[ok, gib_cols] * (_largest(label) / UNIT_BASE_FACTORS[label][stored])
    if candidates and callable(spec) and not hasattr(spec, "evaluate"):
        spec = spec()
    if candidates and spec is None:
        for src, (rows, _ok, label, stored) in candidates.items():
            results[src] = SourceUnitBase(src, "unverified", label, stored, len(rows), 0, "not evaluable", None,
                                          "no fitted model of the framework to decide under")
        candidates = {}
    if not candidates:
        return frame, [results[s] for s in sorted(results)]

    trial = build_observations(flipped, framework)
    tab = trial.table
    ambiguous, labels = {}, {}
    for src, (rows, ok, label, stored) in candidates.items():
        ids = set(frame.loc[ok, "profile_id"])
        m = tab["profile_id"].isin(ids).to_numpy() & _plain_sum(framework, tab["response_form"])
        if not m.any():
            why = sorted({e["reason"] for e in trial.excluded if e["profile_id"] in ids}) or [
                "no figure enters the response as a plain sum of printed components"]
            results[src] = SourceUnitBase(src, "unverified", label, stored, len(rows), 0, "not evaluable", None,
                                          _shorten("also out for: " + " | ".join(why)))
            continue
        x = tab["y_gib"].to_numpy(float)[m] / _largest(label)
        ambiguous[src] = ({k: v[m] for k, v in trial.features.items()}, x, trial.groups[m])
        labels[src] = label
    if not ambiguous:
        return frame, [results[s] for s in sorted(results)]

    _fit, decisions = fit_with_unit_bases(spec, obs.features, obs.y, obs.groups, ambiguous=ambiguous,
                                          label=labels)
    out = frame.copy()
    for src, d in decisions.items():
        rows, ok, label, stored = candidates[src]
        n_eval = int(np.size(ambiguous[src][1]))
        if d.decided:
            scale = d.factor / UNIT_BASE_FACTORS[label][stored]
            out.loc[ok, gib_cols] = out.loc[ok, gib_cols] * scale
            out.loc[ok, "use_in_fit"] = True
            out.loc[ok, "exclude_reason"] = None
            for row in ok:
                out.at[row, "flags"] = tuple(sorted(set(out.at[row, "flags"] or ()) | {"unit_base_decided"}))
            note = f"enters the fit read as {d.base}"
        else:
            note = "stays out: the data cannot decide"
        results[src] = SourceUnitBase(src, "unverified", label, stored, len(rows), n_eval,
                                      "decided" if d.decided else "undecided", d, note)
    return out, [results[s] for s in sorted(results)]


# ----------------------------------------------------------------------------- inferred
def check_inferred_sources(frame: pd.DataFrame, obs, spec, framework: str | None = None) -> list:
    """Check each inferred unit base against the data, leaving the source out of the fit.

    Parameters
    ----------
    frame : pandas.DataFrame
        Profiles (for the sources and stored units).
    obs : Observations
        The framework's fitted observations.
    spec : str, OverheadSpec or None
        The selected spec; it is refitted without each source's rows. None (the framework is
        not fitted) leaves every source not evaluable.
    framework : str, optional
        Default ``obs.framework``.

    Returns
    -------
    list of SourceUnitBase
        ``confirmed`` when the likelihood takes the stored reading at a likelihood ratio of at
        least 20, ``contradicted`` when it takes the other, ``undecided`` otherwise.
    """
    framework = framework or obs.framework
    sources = _sources(frame, framework, "inferred")
    if not sources:
        return []
    if spec is None or obs.n_used == 0:
        return [SourceUnitBase(src, "inferred", *_reading(frame, rows), len(rows), 0, "not evaluable", None,
                               "the framework is not fitted") for src, rows in sorted(sources.items())]
    sp = get_spec(spec) if isinstance(spec, str) else spec
    tab = obs.table
    plain = _plain_sum(obs.framework, tab["response_form"])
    out = []
    for src, rows in sorted(sources.items()):
        label, stored = _reading(frame, rows)
        ids = set(frame.loc[rows, "profile_id"])
        m = tab["profile_id"].isin(ids).to_numpy() & plain
        if label is None or not m.any():
            why = "stored in mixed or unknown units" if label is None else "no profile of it in the fit"
            out.append(SourceUnitBase(src, "inferred", label, stored, len(rows), 0, "not evaluable", None, why))
            continue
        keep = ~m
        if len(set(obs.groups[keep])) < 2:
            out.append(SourceUnitBase(src, "inferred", label, stored, len(rows), int(m.sum()), "not evaluable",
                                      None, "too few architectures outside the source to fit without it"))
            continue
        f = fit_spec(sp, {k: v[keep] for k, v in obs.features.items()}, obs.y[keep], groups=obs.groups[keep])
        if f.status != "fitted":
            out.append(SourceUnitBase(src, "inferred", label, stored, len(rows), int(m.sum()), "not evaluable",
                                      None, f"the fit without the source failed: {f.message}"))
            continue
        feats = {k: v[m] for k, v in obs.features.items()}
        d = decide_source_unit_base(sp, f, feats, obs.y[m] / UNIT_BASE_FACTORS[label][stored], src, label)
        status = "undecided" if not d.decided else ("confirmed" if d.base == stored else "contradicted")
        note = {"confirmed": "the data agree with the documented reading",
                "contradicted": f"the data favour {d.base}; the documented reading ({stored}) is kept: "
                                "review the source",
                "undecided": f"the data cannot decide (the documented reading, {stored}, is kept)"}[status]
        out.append(SourceUnitBase(src, "inferred", label, stored, len(rows), int(m.sum()), status, d, note))
    return out
