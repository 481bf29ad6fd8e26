"""Plain-text report of a validation run, rendered from its JSON document only.

Everything printed comes from :meth:`fitting.report.validate.ValidationResult.to_dict`, so that the
text tables can be reproduced from ``python -m fitting.validate --json``.
"""

from __future__ import annotations

SIZE_COLUMNS = ("1-2B", "7-8B", "13-30B", "40-70B", "MoE")


def pct(v, digits=1) -> str:
    """A fraction as percent text; ``-`` for None."""
    return "-" if v is None else f"{100.0 * v:.{digits}f}%"


def _table(head, rows) -> list:
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*map(str, r)) for r in rows]


def accuracy_rows(doc: dict, scheme: str) -> list:
    """Rows (framework, class, n, models, MAPE, median, p90, coverage, target, meets) of one scheme."""
    out = []
    for fw, block in doc["summary"][scheme].items():
        o = block["overall"]
        if not o["n"]:
            continue
        out.append((fw, "all", o["n"], "-", pct(o["mape"]), pct(o["median_ape"]), pct(o["p90_ape"]),
                    pct(o["coverage"]), "-", "-"))
        for c, m in block["by_size_class"].items():
            target = m.get("target_mape")
            meets = "-" if m.get("meets_target") is None else ("yes" if m["meets_target"] else "NO")
            out.append((fw, c, m["n"], m.get("n_models", "-"), pct(m["mape"]), pct(m["median_ape"]),
                        pct(m["p90_ape"]), pct(m["coverage"]), "< " + pct(target, 0) if target is not None else "-",
                        meets))
    return out


def baseline_rows(doc: dict) -> list:
    """Rows (framework, method, n, MAPE, median, p90, coverage, MAPE per target class)."""
    labels = {m["name"]: m["label"] for m in doc["baselines"]["methods"]}
    out = []
    for fw, entry in doc["baselines"]["by_framework"].items():
        for m, res in entry["methods"].items():
            if "not_applicable" in res:
                out.append((fw, labels[m], "-", "n/a", "", "", "", *("" for _ in SIZE_COLUMNS)))
                continue
            o = res["overall"]
            by = res["by_size_class"]
            out.append((fw, labels[m], o["n"], pct(o["mape"]), pct(o["median_ape"]), pct(o["p90_ape"]),
                        pct(o["coverage"]) if o["coverage"] is not None else "n/a",
                        *(pct(by[c]["mape"]) if c in by and by[c]["n"] else "-" for c in SIZE_COLUMNS)))
    return out


def render_gate(gate: dict) -> str:
    """The gate's verdict, naming every failing row."""
    lines = [f"Gate: MAPE of every size class ({', '.join(gate['classes'])}) <= {pct(gate['max_error'])} "
             f"({gate['scheme']}{', unfitted frameworks included' if gate['include_unfitted'] else ', fitted frameworks'})"
             f": {'PASS' if gate['passed'] else 'FAIL'} ({len(gate['checked'])} class(es) checked)"]
    for f in gate["failing"]:
        lines.append(f"  FAIL {f['framework']} {f['size_class']}: MAPE {pct(f['mape'])} over {f['n']} profile(s); "
                     "rows above the limit:")
        for r in f["rows"]:
            lines.append(f"    {r['profile_id']} ({r['model_id']}): measured {r['measured_gib']:.3f} GiB, "
                         f"predicted {r['predicted_gib']:.3f} GiB, APE {pct(r['ape'])}")
    if not gate["checked"]:
        lines.append("  (no gated size class has data: nothing checked)")
    return "\n".join(lines) + "\n"


def render(doc: dict) -> str:
    """Full text report."""
    lv = pct(doc["interval_level"], 0)
    lines = [f"Validation of {doc['sources'].get('params_dir', '?')} on {doc['sources'].get('profiles_dir', '?')} "
             f"({lv} prediction intervals; APE of the quantity each framework measures, GiB per GPU)", ""]
    for fw, f in doc["frameworks"].items():
        stale = " STALE: the profiles changed since this fit, refit" if f["stale"] else ""
        lines.append(f"{fw}: v{f['version']:04d} {f['status']} (spec {f['selected_spec']}, {f['observed_quantity']}): "
                     f"{f['n_predicted']} of {f['n_total']} profiles predicted ({f['n_used']} used by the fit, "
                     f"{f['n_models']} models){stale}")
        for note in f.get("notes") or []:
            lines.append(f"  note: {note}")
    lines.append("")
    head = ("framework", "class", "n", "models", "MAPE", "median", "p90", "coverage", "target", "meets")
    for scheme in ("lomo", "in_sample"):
        lines += [f"Accuracy, {scheme.replace('_', '-')} (estimator: physics weights), by size class "
                  "('fitted' pools the fitted frameworks):"]
        lines += _table(head, accuracy_rows(doc, scheme)) + [""]
    for scheme in ("lomo_measured_weights", "in_sample_measured_weights"):
        o = doc["summary"][scheme].get("fitted", {}).get("overall", {})
        if o.get("n"):
            lines.append(f"With the measured weights (what the fit saw), {scheme.replace('_measured_weights', '')}"
                         f": MAPE {pct(o['mape'])}, median {pct(o['median_ape'])}, coverage {pct(o['coverage'])} "
                         f"(n {o['n']}, fitted frameworks).")
    lines.append("")
    lines += ["Ours next to today's rules (same profiles; baselines have no intervals: coverage n/a):"]
    bhead = ("framework", "method", "n", "MAPE", "median", "p90", "coverage", *SIZE_COLUMNS)
    lines += _table(bhead, baseline_rows(doc))
    for fw, why in doc["baselines"]["unknown_seed_constants"].items():
        if fw in doc["frameworks"]:
            lines.append(f"  {fw}: {why}")
    lines.append("")
    kv = doc.get("kv_checks") or {}
    if kv:
        b = kv.get("kv_bytes_per_token") or {}
        p = kv.get("kv_pool_tokens_lomo") or {}
        q = kv.get("kv_pool_tokens_in_sample") or {}
        lines.append(f"KV bytes per token (measured pool / tokens vs physics): n {b.get('n', 0)}, "
                     f"MAPE {pct(b.get('mape'), 2)}, max {pct(b.get('max_ape'), 2)}.")
        lines.append(f"vLLM KV pool in tokens (u x G - non-KV): n {q.get('n', 0)}; in-sample MAPE {pct(q.get('mape'))}, "
                     f"coverage {pct(q.get('coverage'))}; leave-one-architecture-out MAPE {pct(p.get('mape'))}, "
                     f"coverage {pct(p.get('coverage'))}.")
        lines.append("")
    if doc.get("seed_plan"):
        lines.append("Seed-plan figures (not scored) and their most likely explanation:")
        for s in doc["seed_plan"]:
            lines.append(f"  {s['profile_id']} ({s['framework']}, {s.get('model_id')}): {s['explanation']}")
        lines.append("")
    n_exc = len(doc.get("excluded") or [])
    lines.append(f"{n_exc} profile(s) not validated (excluded from the fit; reasons in --json 'excluded').")
    if "gate" in doc:
        lines.append("")
        lines.append(render_gate(doc["gate"]).rstrip("\n"))
    return "\n".join(lines) + "\n"
