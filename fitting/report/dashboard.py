"""``reports/index.html``: a static validation dashboard (no server, no external assets).

One self-contained HTML file (CSS, JavaScript and the figures as inline SVG) that works
from ``file://``:

* summary cards: profiles validated, size classes passing/failing the seed plan's targets,
  average error (MAPE) and the coverage of the prediction intervals;
* charts: accuracy by model size (ours next to the baselines, with the targets), error by
  batch size, predicted against measured with the intervals;
* per framework: the coefficient table with 95 % intervals and the log-scaling verdict
  (from the coefficient file's ``hypothesis``);
* a sortable, filterable table of every profile with its error (or why it was excluded).

The table honours URL hash parameters, so that a link (or a headless browser) can open it
sorted and filtered: ``#sort=<column key>&dir=asc|desc&q=<text>&fw=<framework>``; clicking
a header or typing in the filter updates the hash. Column keys are the ``data-key`` of the
headers (``framework, profile, model, size, tp, batch, measured, predicted, ape_lomo,
ape_in, covered, status``).

:func:`write_dashboard` is what ``python -m fitting.refit`` calls after writing the
coefficient files; ``python -m fitting.report.dashboard`` does the same on its own.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from html import escape
from pathlib import Path

from fitting.atomic_io import atomic_write_text
from fitting.estimator import CoefficientFileError
from fitting.report import svg as _svg
from fitting.report.browser import Browser, BrowserError
from fitting.report.validate import ValidationResult, validate
from fitting.report.validate_render import SIZE_COLUMNS, accuracy_rows, baseline_rows
from fitting.version import __version__

__all__ = ["build_html", "write_dashboard", "main", "TABLE_COLUMNS"]

#: (key, header, type) of the profile table; type "num" sorts numerically.
TABLE_COLUMNS = (
    ("framework", "framework", "str"), ("profile", "profile", "str"), ("model", "model", "str"),
    ("size", "size class", "str"), ("tp", "tp", "num"), ("batch", "batch", "num"),
    ("measured", "measured GiB", "num"), ("predicted", "predicted GiB (LOMO)", "num"),
    ("interval", "interval GiB", "str"), ("ape_lomo", "APE LOMO", "num"), ("ape_in", "APE in-sample", "num"),
    ("covered", "in interval", "str"), ("status", "status", "str"),
)

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#1b2a41;color:#fff;padding:16px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c9d3e0}main{padding:16px 24px;max-width:1400px}
h2{margin:28px 0 8px;font-size:18px;border-bottom:1px solid #d5dae1;padding-bottom:4px}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{background:#fff;border:1px solid #d5dae1;border-radius:8px;
padding:12px 16px;min-width:180px;flex:1}.card .v{font-size:26px;font-weight:600}.card .k{color:#5b6675;font-size:12px;
text-transform:uppercase;letter-spacing:.04em}.card.bad .v{color:#b42318}.card.good .v{color:#067647}
.figs{display:flex;flex-wrap:wrap;gap:16px}.figs figure{background:#fff;border:1px solid #d5dae1;border-radius:8px;
margin:0;padding:8px}.figs figcaption{font-size:12px;color:#5b6675;max-width:620px}
svg.fig{display:block;max-width:100%;height:auto}svg .axes line{stroke:#333}svg .grid{stroke:#e3e7ec}
svg .tick,svg .fig-legend{font-size:10px;fill:#333}svg .label{font-size:11px;fill:#333}
svg .fig-title{font-size:13px;font-weight:600;fill:#1b1f24}svg .diag{stroke:#666;stroke-dasharray:4 3}
svg .target{stroke:#b42318;stroke-width:2;stroke-dasharray:5 3}svg .clip{font-size:9px;fill:#fff}
table{border-collapse:collapse;background:#fff;font-size:13px}th,td{border:1px solid #d5dae1;padding:3px 7px;
text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
#profiles th{cursor:pointer;user-select:none;background:#eef1f5;position:sticky;top:0}
#profiles th[aria-sort=ascending]::after{content:" \\25B2"}#profiles th[aria-sort=descending]::after{content:" \\25BC"}
tr.excluded td{color:#7a8594}.fail{color:#b42318;font-weight:600}.pass{color:#067647}
.controls{margin:8px 0;display:flex;gap:12px;align-items:center;flex-wrap:wrap}
.controls input{padding:4px 8px;min-width:260px}.note{color:#5b6675;font-size:12px}
details{margin:6px 0}.fw{background:#fff;border:1px solid #d5dae1;border-radius:8px;padding:8px 14px;margin:10px 0}
"""

_JS = r"""
(function () {
  "use strict";
  var table = document.getElementById("profiles");
  var tbody = table.tBodies[0];
  var rows = Array.prototype.slice.call(tbody.rows);
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var q = document.getElementById("q"), fw = document.getElementById("fw");
  var count = document.getElementById("row-count");
  var state = {sort: "", dir: "asc", q: "", fw: ""};
  var applied = 0;
  function readHash() {
    var p = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    state.sort = p.get("sort") || ""; state.dir = p.get("dir") === "desc" ? "desc" : "asc";
    state.q = p.get("q") || ""; state.fw = p.get("fw") || "";
    q.value = state.q; fw.value = state.fw;
  }
  function writeHash() {
    var p = new URLSearchParams();
    if (state.sort) { p.set("sort", state.sort); p.set("dir", state.dir); }
    if (state.q) p.set("q", state.q);
    if (state.fw) p.set("fw", state.fw);
    var h = p.toString();
    history.replaceState(null, "", h ? "#" + h : window.location.pathname + window.location.search);
  }
  function key(row, i, num) {
    var v = row.cells[i].getAttribute("data-v");
    if (v === null) v = row.cells[i].textContent;
    if (num) { var x = parseFloat(v); return isNaN(x) ? null : x; }
    return v.toLowerCase();
  }
  function apply() {
    var needle = state.q.toLowerCase();
    var shown = 0;
    rows.forEach(function (r) {
      var ok = (!state.fw || r.getAttribute("data-fw") === state.fw) &&
               (!needle || r.textContent.toLowerCase().indexOf(needle) !== -1);
      r.hidden = !ok; if (ok) shown += 1;
    });
    var idx = -1, num = false;
    heads.forEach(function (h, i) {
      if (h.getAttribute("data-key") === state.sort) { idx = i; num = h.getAttribute("data-type") === "num"; }
      h.setAttribute("aria-sort", h.getAttribute("data-key") === state.sort ?
                     (state.dir === "asc" ? "ascending" : "descending") : "none");
    });
    var ordered = rows.slice();
    if (idx >= 0) {
      var sign = state.dir === "asc" ? 1 : -1;
      ordered.sort(function (a, b) {
        var x = key(a, idx, num), y = key(b, idx, num);
        if (x === null && y === null) return 0;
        if (x === null) return 1;
        if (y === null) return -1;
        return x < y ? -sign : x > y ? sign : 0;
      });
    }
    ordered.forEach(function (r) { tbody.appendChild(r); });
    count.textContent = shown + " of " + rows.length + " profiles shown";
    document.body.setAttribute("data-shown", String(shown));
    applied += 1;
    document.body.setAttribute("data-applied", String(applied));
  }
  heads.forEach(function (h) {
    h.addEventListener("click", function () {
      var k = h.getAttribute("data-key");
      state.dir = state.sort === k && state.dir === "asc" ? "desc" : "asc";
      state.sort = k; writeHash(); apply();
    });
  });
  q.addEventListener("input", function () { state.q = q.value; writeHash(); apply(); });
  fw.addEventListener("change", function () { state.fw = fw.value; writeHash(); apply(); });
  window.addEventListener("hashchange", function () { readHash(); apply(); });
  readHash(); apply();
  document.body.setAttribute("data-ready", "1");
})();
"""


def _e(s) -> str:
    return escape("" if s is None else str(s), quote=True)


def _pct(v, digits=1) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{100 * v:.{digits}f}%"


def _num(v, fmt="{:.3g}") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return fmt.format(v)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ------------------------------------------------------------------------------- parts
def _cards(doc) -> str:
    fitted = [fw for fw, f in doc["frameworks"].items() if f["status"] == "fitted"]
    lomo = doc["summary"]["lomo"]
    n_pass = n_fail = 0
    for fw in fitted:
        for m in (lomo.get(fw) or {}).get("by_size_class", {}).values():
            if m.get("meets_target") is True:
                n_pass += 1
            elif m.get("meets_target") is False:
                n_fail += 1
    o = (lomo.get("fitted") or {}).get("overall") or {}
    oi = ((doc["summary"]["in_sample"].get("fitted") or {}).get("overall")) or {}
    n_rows = len(doc["rows"])
    n_files = doc["sources"].get("n_profile_files", n_rows + len(doc["excluded"]))
    level = doc["interval_level"]
    cards = [
        ("profiles validated", f"{n_rows}", f"of {n_files} profile files; {len(doc['excluded'])} excluded "
                                            f"(reasons in the table)", ""),
        ("size classes vs targets", f"{n_pass} pass / {n_fail} fail",
         f"leave-one-architecture-out MAPE against the seed plan's targets, {len(fitted)} fitted framework(s)",
         "bad" if n_fail else "good"),
        ("average error (MAPE)", _pct(o.get("mape")),
         f"leave-one-architecture-out, fitted frameworks (in-sample {_pct(oi.get('mape'))}; median "
         f"{_pct(o.get('median_ape'))}, p90 {_pct(o.get('p90_ape'))})", ""),
        ("interval coverage", _pct(o.get("coverage")),
         f"of the {_pct(level, 0)} prediction intervals, leave-one-architecture-out (nominal {_pct(level, 0)})",
         "good" if o.get("coverage_ok") else "bad"),
    ]
    gate = doc.get("gate")
    if gate is not None:
        cards.append(("CI gate", "PASS" if gate["passed"] else "FAIL",
                      f"every size class <= {_pct(gate['max_error'], 0)} MAPE ({gate['scheme']})",
                      "good" if gate["passed"] else "bad"))
    out = ['<section class="cards" id="cards">']
    for k, v, note, cls in cards:
        out.append(f'<div class="card {cls}"><div class="k">{_e(k)}</div><div class="v">{_e(v)}</div>'
                   f'<div class="note">{_e(note)}</div></div>')
    out.append("</section>")
    return "\n".join(out)


def _figures(doc) -> str:
    rows = doc["rows"]
    order = ["<1B", "1-2B", "3-6B", "7-8B", "13-30B", "40-70B", ">100B", "MoE"]
    comp = (doc["baselines"]["by_framework"].get("fitted") or {}).get("methods", {})
    labels = {m["name"]: m["label"] for m in doc["baselines"]["methods"]}
    present = [c for c in order if any(c in (r.get("by_size_class") or {}) for r in comp.values()
                                       if "not_applicable" not in r)]
    series = []
    for name, res in comp.items():
        if "not_applicable" in res:
            continue
        series.append((labels.get(name, name), [(res["by_size_class"].get(c) or {}).get("mape") for c in present]))
    ours = [v for lab, vs in series[:2] for v in vs if _finite(v)]
    targets = {c: t for c, t in doc["targets_mape"].items() if c in present}
    ymax = max(ours + list(targets.values()) + [0.1]) * 2.0
    fig1 = _svg.grouped_bars(present, series, title="Accuracy by model size (MAPE, fitted frameworks)",
                             ylabel="mean absolute percentage error", targets=targets, ymax=ymax,
                             desc="Mean absolute percentage error per size class: ours (leave-one-architecture-out and "
                                  "in-sample) and the baselines; dashed red lines are the seed plan's targets.")
    pts_b, pts_p = [], []
    for r in rows:
        ape = r.get("lomo_ape")
        tip = f"{r['profile_id']} ({r['model_id']}): measured {_num(r.get('measured_gib'))} GiB"
        if _finite(ape) and _finite(r.get("batch_size")):
            pts_b.append({"x": r["batch_size"], "y": max(ape, 1e-3), "group": r["framework"],
                          "tip": f"{tip}, APE {_pct(ape)}"})
        if _finite(r.get("lomo_pred_gib")):
            pts_p.append({"x": r["measured_gib"], "y": r["lomo_pred_gib"], "lo": r.get("lomo_lower_gib"),
                          "hi": r.get("lomo_upper_gib"), "group": r["framework"],
                          "tip": f"{tip}, predicted {_num(r['lomo_pred_gib'])} GiB"})
    fig2 = _svg.scatter(pts_b, title="Error by batch size (leave-one-architecture-out)", xlabel="batch size "
                        "(concurrent sequences; vLLM: max_num_seqs)", ylabel="absolute percentage error",
                        xlog=True, ylog=True, base2_x=True, ypct=True,
                        desc="Absolute percentage error of every validated profile against its batch size.")
    fig3 = _svg.scatter(pts_p, title="Predicted vs measured (GiB per GPU)", xlabel="measured (GiB per GPU)",
                        ylabel="predicted, leave-one-architecture-out (GiB per GPU)", diagonal=True,
                        desc="Each profile's measured quantity against its leave-one-architecture-out prediction with the "
                             "prediction interval; dashed: predicted = measured.")
    pts_c = []
    for fw, info in sorted(doc["frameworks"].items()):
        cal = info.get("calibration") or {}
        if cal.get("status") != "ok":
            continue
        for lv, c, lo, hi in zip(cal["levels"], cal["coverage"], cal["band_lower"], cal["band_upper"]):
            pts_c.append({"x": lv, "y": c, "lo": lo, "hi": hi, "group": fw,
                          "tip": f"{fw}: nominal {_pct(lv, 0)}, observed {_pct(c)} of {cal['n']} "
                                 f"(binomial 95% band {_pct(lo)}-{_pct(hi)})"})
    fig4 = _svg.scatter(pts_c, title="Calibration (leave-one-architecture-out)", xlabel="nominal interval level",
                        ylabel="observed coverage", xlog=False, ylog=False, diagonal=True,
                        desc="Reliability curve: each fitted framework's observed coverage of its 50/80/90/95% "
                             "prediction intervals for held-out architectures, with the binomial 95% band around "
                             "the nominal level; dashed: perfect calibration.")
    caps = ["Bars: MAPE per size class; dashed red: the seed plan's target. Bars taller than the axis are cut and "
            "labelled with their value.",
            "Each point is one profile (hover for its id); errors below 0.1% are drawn at 0.1%. vLLM's batch is "
            "max_num_seqs, the capacity it sizes buffers for.",
            f"Vertical lines: {_pct(doc['interval_level'], 0)} prediction intervals. Unfitted frameworks show their "
            "seed-plan fallback.",
            "Vertical lines: the binomial 95% band of the coverage for that many profiles at the nominal level; a "
            "point outside its band is miscalibrated (python -m fitting.validate --calibration prints the table)."]
    out = ['<section class="figs" id="figures">']
    for i, (fig, cap) in enumerate(zip((fig1, fig2, fig3, fig4), caps)):
        out.append(f'<figure id="fig-{i + 1}">{fig}<figcaption>{_e(cap)}</figcaption></figure>')
    out.append("</section>")
    return "\n".join(out)


def _accuracy_table(doc) -> str:
    head = ("framework", "class", "n", "models", "MAPE", "median APE", "p90 APE", "coverage", "target", "meets")
    out = []
    for scheme, label in (("lomo", "leave-one-architecture-out"), ("in_sample", "in-sample")):
        out.append(f"<h3>{_e(label)}</h3><table class='acc' id='acc-{scheme}'><thead><tr>"
                   + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>")
        for r in accuracy_rows(doc, scheme):
            cls = " class='fail'" if r[-1] == "NO" else (" class='pass'" if r[-1] == "yes" else "")
            out.append("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in r[:-1]) + f"<td{cls}>{_e(r[-1])}</td></tr>")
        out.append("</tbody></table>")
    return "\n".join(out)


def _baseline_table(doc) -> str:
    head = ("framework", "method", "n", "MAPE", "median APE", "p90 APE", "coverage", *SIZE_COLUMNS)
    out = ["<table id='baselines'><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for r in baseline_rows(doc):
        out.append("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in r) + "</tr>")
    out.append("</tbody></table>")
    notes = [f"<li>{_e(m['label'])}: {_e(m['description'])}</li>" for m in doc["baselines"]["methods"]]
    notes += [f"<li>{_e(fw)}: {_e(why)}</li>" for fw, why in doc["baselines"]["unknown_seed_constants"].items()
              if fw in doc["frameworks"]]
    out.append("<ul class='note'>" + "".join(notes) + "</ul>")
    return "\n".join(out)


def _coef_section(fw, cdoc, vinfo) -> str:
    spec_name = cdoc["selected_spec"]
    spec = cdoc["specs"][spec_name]
    cv = spec.get("cv") or {}
    h = cdoc.get("hypothesis") or {}
    prof = cdoc["profiles"]
    out = [f"<div class='fw' id='coef-{_e(fw)}'><h3>{_e(fw)} &mdash; v{cdoc['version']:04d}, "
           f"{_e(cdoc['status'])}, spec <code>{_e(spec_name)}</code></h3>",
           f"<p class='note'>Observed quantity <code>{_e(cdoc['observed_quantity']['name'])}</code>: "
           f"{_e(cdoc['observed_quantity']['description'])} Profiles used {prof['n_used']} of {prof['n_total']} "
           f"({prof.get('n_models', 0)} models). Leave-one-model-out MAPE in the file {_pct(cv.get('mape'))}."
           + (f" {_e(cdoc.get('status_reason'))}" if cdoc.get("status_reason") else "") + "</p>",
           f"<p><code>{_e(spec['formula'])}</code></p>",
           "<table class='coef'><thead><tr><th>parameter</th><th>unit</th><th>estimate</th><th>SE</th>"
           "<th>95% CI</th><th>identified</th><th>note</th></tr></thead><tbody>"]
    for p in spec["params"]:
        ci = "-" if p.get("ci_lower") is None else f"[{_num(p['ci_lower'], '{:.4g}')}, {_num(p['ci_upper'], '{:.4g}')}]"
        note = p.get("not_identified_reason") or ("at bound" if p.get("at_bound") else "")
        out.append(f"<tr><td>{_e(p['name'])}</td><td>{_e(p['unit'])}</td><td class='n'>{_num(p['estimate'], '{:.4g}')}"
                   f"</td><td class='n'>{_num(p.get('se'), '{:.3g}')}</td><td>{_e(ci)}</td>"
                   f"<td>{'yes' if p['identified'] else 'no'}</td><td>{_e(note)}</td></tr>")
    out.append("</tbody></table>")
    if cdoc.get("fallback"):
        out.append(f"<p class='note'>Fallback: {_e(cdoc['fallback'].get('text', ''))} "
                   f"({_e(cdoc['fallback'].get('note', ''))}).</p>")
    cg = cdoc.get("cuda_graph")
    if cg and cg.get("params"):
        terms = ", ".join(f"{p['name']} = {_num(p['estimate'], '{:.4g}')} {p['unit']}" for p in cg["params"])
        out.append(f"<p class='note'>CUDA-graph term (separate response): <code>{_e(cg['formula'])}</code>; {_e(terms)}.</p>")
    out.append(f"<p><strong>Log-scaling verdict:</strong> <span class='verdict'>{_e(h.get('verdict', 'not run'))}</span></p>")
    out.append("</div>")
    return "\n".join(out)


def _profile_table(doc) -> str:
    heads = "".join(f'<th data-key="{k}" data-type="{t}" aria-sort="none">{_e(h)}</th>' for k, h, t in TABLE_COLUMNS)
    body = []
    for r in doc["rows"]:
        lo, hi = r.get("lomo_lower_gib"), r.get("lomo_upper_gib")
        interval = f"[{_num(lo)}, {_num(hi)}]" if _finite(lo) and _finite(hi) else "-"
        cov = r.get("lomo_covered")
        cov_txt = "-" if not _finite(cov) else ("yes" if cov >= 0.5 else "no")
        status = r.get("cannot_predict") or ("fitted" if r["status"] == "fitted" else "unfitted: seed-plan fallback")
        cells = [(r["framework"], None), (r["profile_id"], None), (r["model_id"], None), (r["size_class"], None),
                 (_num(r.get("tp"), "{:g}"), r.get("tp")), (_num(r.get("batch_size"), "{:g}"), r.get("batch_size")),
                 (_num(r.get("measured_gib"), "{:.3f}"), r.get("measured_gib")),
                 (_num(r.get("lomo_pred_gib"), "{:.3f}"), r.get("lomo_pred_gib")), (interval, None),
                 (_pct(r.get("lomo_ape")), r.get("lomo_ape")), (_pct(r.get("ape")), r.get("ape")),
                 (cov_txt, None), (status, None)]
        body.append(_tr(r["framework"], cells, "validated"))
    for x in doc["excluded"]:
        fw = x.get("framework") or "-"
        cells = [(fw, None), (x["profile_id"], None)] + [("", None)] * 10 + [(f"excluded: {x['reason']}", None)]
        body.append(_tr(fw, cells, "excluded"))
    fws = sorted({r["framework"] for r in doc["rows"]} | {x.get("framework") or "-" for x in doc["excluded"]})
    opts = "".join(f'<option value="{_e(f)}">{_e(f)}</option>' for f in fws)
    return "\n".join([
        '<div class="controls"><label>filter <input id="q" type="search" placeholder="text in any column"></label>'
        f'<label>framework <select id="fw"><option value="">all</option>{opts}</select></label>'
        '<span id="row-count" class="note"></span></div>',
        f'<table id="profiles"><thead><tr>{heads}</tr></thead><tbody>', *body, "</tbody></table>"])


def _tr(fw, cells, cls) -> str:
    tds = []
    for text, v in cells:
        if _finite(v):
            tds.append(f'<td class="n" data-v="{v!r}">{_e(text)}</td>')
        elif v is not None or text in ("-",):
            tds.append(f'<td class="n" data-v="">{_e(text)}</td>')
        else:
            tds.append(f"<td>{_e(text)}</td>")
    return f'<tr class="{cls}" data-fw="{_e(fw)}">' + "".join(tds) + "</tr>"


def _seed_plan(doc) -> str:
    if not doc.get("seed_plan"):
        return "<p class='note'>No seed-plan profiles.</p>"
    items = "".join(f"<li><code>{_e(s['profile_id'])}</code> ({_e(s['framework'])}, {_e(s.get('model_id'))}): "
                    f"{_e(s['explanation'])}</li>" for s in doc["seed_plan"])
    return f"<ul id='seed-plan'>{items}</ul>"


def build_html(doc: dict, coefficient_docs: dict, *, title: str = "llm-sizer-fit: validation dashboard") -> str:
    """The dashboard page as one HTML string.

    Parameters
    ----------
    doc : dict
        :meth:`fitting.report.validate.ValidationResult.to_dict` (the ``--json`` output).
    coefficient_docs : dict
        ``{framework: coefficient document}`` (``fitted_params/<framework>/latest.json``).
    title : str

    Returns
    -------
    str
        Self-contained HTML (UTF-8): no external references.
    """

    versions = ", ".join(f"{fw} v{d['version']:04d}" for fw, d in sorted(coefficient_docs.items()))
    created = max((d.get("created", "") for d in coefficient_docs.values()), default="")
    level = _pct(doc["interval_level"], 0)
    kv = doc.get("kv_checks") or {}
    kvb = kv.get("kv_bytes_per_token") or {}
    kvp = kv.get("kv_pool_tokens_lomo") or {}
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_e(title)}</h1><p>Package {_e(__version__)}; coefficient files {_e(versions)} "
        f"(newest {_e(created)}); profiles {_e(doc['sources'].get('profiles_dir', ''))}. Errors are absolute "
        f"percentage errors of the quantity each framework measures (GiB per GPU); intervals at {level}.</p></header>",
        "<main>", _cards(doc),
        "<h2>Figures</h2>", _figures(doc),
        "<h2>Accuracy by size class</h2>", _accuracy_table(doc),
        "<h2>Ours next to today's rules</h2>", _baseline_table(doc),
        f"<p class='note'>KV bytes per token (measured pool / tokens vs physics): n {kvb.get('n', 0)}, MAPE "
        f"{_pct(kvb.get('mape'), 2)}. vLLM KV pool in tokens, leave-one-architecture-out: n {kvp.get('n', 0)}, MAPE "
        f"{_pct(kvp.get('mape'))}, coverage {_pct(kvp.get('coverage'))}.</p>",
        "<h2>Coefficients and the log-scaling verdict</h2>",
        *[_coef_section(fw, d, doc["frameworks"].get(fw, {})) for fw, d in sorted(coefficient_docs.items())],
        "<h2>Seed-plan figures</h2>", _seed_plan(doc),
        "<h2>Every profile</h2>",
        "<p class='note'>Click a header to sort; type to filter. The state is kept in the URL "
        "(<code>#sort=ape_lomo&amp;dir=desc&amp;q=llama&amp;fw=vllm</code>).</p>",
        _profile_table(doc),
        "</main>", f"<script>{_JS}</script>", "</body></html>", ""]
    return "\n".join(parts)


def _load_coefficient_docs(params_dir) -> dict:
    out = {}
    for p in sorted(Path(params_dir).glob("*/latest.json")):
        with open(p, encoding="utf-8") as fh:
            out[p.parent.name] = json.load(fh)
    return out


def write_dashboard(profiles_dir="profiles", params_dir="fitted_params", reports_dir="reports", *,
                    validation=None, alpha: float = 0.10, max_error=None, scheme: str = "lomo",
                    filename: str = "index.html") -> Path:
    """Validate and write ``<reports_dir>/index.html`` atomically.

    Parameters
    ----------
    profiles_dir, params_dir : str or Path
        As :func:`fitting.report.validate.validate`.
    reports_dir : str or Path
    validation : dict or ValidationResult, optional
        A validation already run (``to_dict()`` output or the result); run here otherwise.
    alpha : float
        Interval level ``1 - alpha`` when validating here.
    max_error : float, optional
        Percent; adds the CI gate's verdict card.
    scheme : str
        Gate scheme (see :func:`fitting.report.validate.apply_gate`).
    filename : str

    Returns
    -------
    Path
        The written HTML file.
    """

    if validation is None:
        validation = validate(profiles_dir, params_dir, alpha=alpha)
    if isinstance(validation, ValidationResult):
        validation = validation.to_dict(max_error=max_error, scheme=scheme)

    html = build_html(validation, _load_coefficient_docs(params_dir))
    return atomic_write_text(Path(reports_dir) / filename, html)


def main(argv=None) -> int:
    """``python -m fitting.report.dashboard``: validate and write the dashboard; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m fitting.report.dashboard",
                                description="Write the static validation dashboard reports/index.html.")
    p.add_argument("--profiles", default="profiles", help="profile folder (default: profiles/)")
    p.add_argument("--params", default="fitted_params", help="coefficient folder (default: fitted_params/)")
    p.add_argument("--reports", default="reports", help="output folder (default: reports/)")
    p.add_argument("--alpha", type=float, default=0.10, help="prediction intervals at 1 - alpha (default 0.10)")
    p.add_argument("--max-error", type=float, default=None, metavar="PCT", help="show the CI gate at this MAPE")
    p.add_argument("--screenshot", metavar="PNG", help="also save a screenshot of the top of the page (1400 x 1800 "
                                                        "px) taken by headless Chromium (e.g. reports/dashboard.png)")
    args = p.parse_args(argv)

    try:
        path = write_dashboard(args.profiles, args.params, args.reports, alpha=args.alpha, max_error=args.max_error)
    except (FileNotFoundError, CoefficientFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    if args.screenshot:

        try:
            with Browser.launch(width=1400, height=1800) as browser:
                page = browser.open(path.resolve().as_uri())
                errors = page.errors()
                page.screenshot(args.screenshot, full_page=False)
        except BrowserError as exc:
            print(f"error: screenshot: {exc}", file=sys.stderr)
            return 2
        for e in errors:
            print(f"browser console: {e}", file=sys.stderr)
        print(f"wrote {args.screenshot}")
        return 1 if errors else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
