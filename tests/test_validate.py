"""python -m fitting.validate: the table from the JSON, the exit code, consistency with the
refit's cross-validation and with the estimator, and recovery on SIMULATED profiles."""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest

from fitting.report import validate as V
from fitting.report.validate_render import pct, render
from tests._validation_data import committed_inputs, simulated_inputs

#: Relative tolerance of numbers that went through the coefficient file (12 significant digits).
FILE_RTOL = 1e-9


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = V.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    prof, params = committed_inputs(tmp_path_factory.mktemp("committed"))
    rc, out, _ = _run(["--profiles", prof, "--params", params, "--json"])
    assert rc == 0, "without --max-error the validation never fails"
    return prof, params, json.loads(out)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    prof, params = simulated_inputs(tmp_path_factory.mktemp("sim"))
    rc, out, _ = _run(["--profiles", prof, "--params", params, "--json"])
    assert rc == 0
    return prof, params, json.loads(out)


def _rows(doc, fw=None):
    return [r for r in doc["rows"] if fw is None or r["framework"] == fw]


def _arr(rows, key):
    return np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=float)


# ------------------------------------------------------------------ the committed data
def test_validation_table_is_reproduced_from_the_json(committed):
    """Every summary number is recomputed from the per-profile rows of the JSON, and the
    printed table is exactly the rendering of the JSON."""
    prof, params, doc = committed
    assert doc["rows"], "the committed data must give at least one validated profile"
    for r in doc["rows"]:  # APE = |predicted - measured| / measured
        for pred, ape in (("pred_gib", "ape"), ("lomo_pred_gib", "lomo_ape"), ("fit_pred_gib", "fit_ape")):
            if r[pred] is not None:
                assert r[ape] == pytest.approx(abs(r[pred] - r["measured_gib"]) / r["measured_gib"], rel=1e-12)
    for scheme, (ape_col, cov_col) in V.SCHEMES.items():
        for fw, block in doc["summary"][scheme].items():
            if fw == "fitted":
                fws = {k for k, f in doc["frameworks"].items() if f["status"] == "fitted"}
                rows = [r for r in doc["rows"] if r["framework"] in fws]
            else:
                rows = _rows(doc, fw)
            for c, m in block["by_size_class"].items():
                sel = [r for r in rows if r["size_class"] == c]
                a = _arr(sel, ape_col)
                ok = np.isfinite(a)
                assert m["n"] == ok.sum()
                assert m["mape"] == pytest.approx(a[ok].mean(), rel=1e-12)
                assert m["median_ape"] == pytest.approx(np.median(a[ok]), rel=1e-12)
                assert m["p90_ape"] == pytest.approx(np.percentile(a[ok], 90), rel=1e-12)
                cov = _arr(sel, cov_col)[ok]
                if np.isfinite(cov).any():
                    assert m["coverage"] == pytest.approx(np.nanmean(cov), rel=1e-12)
                t = doc["targets_mape"].get(c)
                assert m["meets_target"] == (None if t is None else bool(m["mape"] < t))
    rc, text, _ = _run(["--profiles", prof, "--params", params])
    assert rc == 0
    assert text == render(doc)
    for fw, block in doc["summary"]["lomo"].items():
        for c, m in block["by_size_class"].items():
            assert any(line.split()[:2] == [fw, c] and pct(m["mape"]) in line.split() for line in text.splitlines()), \
                (fw, c)


def test_exit_code_follows_max_error(committed):
    prof, params, doc = committed
    checked = V.apply_gate(_frame(doc), doc["frameworks"], 1e9)["checked"]
    if not checked:
        pytest.skip("no fitted framework has a gated size class in the committed data")
    worst = max(checked, key=lambda c: c["mape"])
    limit = 100 * worst["mape"]
    rc, out, _ = _run(["--profiles", prof, "--params", params, "--max-error", limit * 1.001])
    assert rc == 0, out
    assert "PASS" in out
    rc, out, _ = _run(["--profiles", prof, "--params", params, "--max-error", limit * 0.999])
    assert rc == 1
    assert f"FAIL {worst['framework']} {worst['size_class']}" in out
    bad = [r for r in _rows(doc, worst["framework"]) if r["size_class"] == worst["size_class"]
           and r["lomo_ape"] is not None and r["lomo_ape"] > limit * 0.999 / 100]
    assert bad and all(r["profile_id"] in out for r in bad), "every row above the limit is named"


def _frame(doc):
    import pandas as pd

    return pd.DataFrame(doc["rows"]) if doc["rows"] else pd.DataFrame(columns=["framework", "size_class"])


def test_measured_weights_lomo_equals_the_coefficient_files_cv(committed):
    """The leave-one-model-out of the measured-weights view is the refit's own CV."""
    _, _, doc = committed
    compared = 0
    for fw, f in doc["frameworks"].items():
        if f["status"] != "fitted" or f["stale"] or f["file_cv_mape"] is None:
            continue
        a = _arr(_rows(doc, fw), "lomo_fit_ape")
        assert np.nanmean(a) == pytest.approx(f["file_cv_mape"], rel=FILE_RTOL)
        compared += 1
    if not compared:
        pytest.skip("no fitted, up-to-date coefficient file with CV in the committed data")


def test_json_has_every_reported_quantity(committed):
    _, _, doc = committed
    r = doc["rows"][0]
    for key in ("measured_gib", "pred_gib", "lower_gib", "upper_gib", "ape", "covered", "lomo_pred_gib",
                "lomo_ape", "kv_bpt_measured", "kv_bpt_pred", "kv_pool_tokens_pred", "kv_pool_tokens_measured"):
        assert key in r
    assert set(doc["summary"]) == set(V.SCHEMES)
    assert doc["interval_level"] == pytest.approx(0.9)
    for row in doc["rows"]:  # the interval contains the prediction
        if row["pred_gib"] is not None:
            assert row["lower_gib"] <= row["pred_gib"] <= row["upper_gib"]


# ------------------------------------------------------------------ SIMULATED profiles
def test_simulated_recovery_and_coverage(simulated):
    """SIMULATED profiles from known coefficients with 1 % log-normal noise: errors at the
    noise level and 90 % intervals covering about 90 % (binomial tolerance)."""
    _, _, doc = simulated
    o = doc["summary"]["lomo"]["vllm"]["overall"]
    n = o["n"]
    assert n == 32
    # E|N(0, 0.01)| = 0.8 %; a correct model cannot be far above it even out of sample
    assert o["mape"] < 0.02
    assert doc["summary"]["in_sample"]["vllm"]["overall"]["mape"] < 0.015
    tol = 3 * math.sqrt(0.9 * 0.1 / n)
    assert abs(o["coverage"] - 0.9) <= tol + 0.05
    # vLLM's KV bytes per token are not in these SIMULATED files: no KV rows
    assert doc["kv_checks"]["kv_bytes_per_token"]["n"] == 0


def test_in_sample_prediction_is_the_estimators(simulated):
    """The in-sample prediction equals Estimator.predict for the profile's configuration."""
    from fitting.estimator import Estimator

    prof, params, doc = simulated
    est = Estimator.load(params / "vllm")
    for r in doc["rows"][:6]:
        p = est.predict(r["model_id"], tp=int(r["tp"]), batch_size=int(r["batch_size"]), input_len=1,
                        output_len=0, max_num_batched_tokens=8192, dtype="bfloat16", alpha=doc["alpha"])
        assert r["pred_gib"] == pytest.approx(p.non_kv_gib, rel=1e-9)
        assert r["lower_gib"] == pytest.approx(p.non_kv_lower_gib, rel=1e-9)
        assert r["upper_gib"] == pytest.approx(p.non_kv_upper_gib, rel=1e-9)


def test_gate_names_a_corrupted_profile(simulated, tmp_path):
    """Doubling one SIMULATED measurement makes its size class fail, and the row is named."""
    import shutil

    prof, params, doc = simulated
    rc, out, _ = _run(["--profiles", prof, "--params", params, "--max-error", 5])
    assert rc == 0, out
    copy = tmp_path / "profiles"
    shutil.copytree(prof, copy)
    target = sorted(copy.rglob("sim-vllm-0-*.json"))[0]  # the 1-2B model
    rec = json.loads(target.read_text())
    rec["measured"]["non_torch_gib"] += rec["measured"]["weights_gib"] + rec["measured"]["non_torch_gib"]
    target.write_text(json.dumps(rec))
    rc, out, _ = _run(["--profiles", copy, "--params", params, "--max-error", 5])
    assert rc == 1
    assert "FAIL vllm 1-2B" in out and rec["profile_id"] in out
    assert "STALE" in out  # the coefficient file was fitted to other data


def test_seed_plan_profile_is_explained_not_scored(simulated, tmp_path):
    """A SIMULATED seed-plan figure equal to 0.9 x the GPU is explained as vLLM's preallocation."""
    import shutil

    prof, params, _ = simulated
    copy = tmp_path / "profiles"
    shutil.copytree(prof, copy)
    rec = json.loads(sorted(copy.rglob("sim-vllm-1-*.json"))[0].read_text())
    rec["profile_id"] = "sim-seed-plan-8b"
    rec["measured"] = {"peak_total_gib": round(0.9 * 80.0 + 0.4, 3)}
    rec["provenance"]["kind"] = "seed-plan"
    rec["engine_settings"] = {"gpu_memory_utilization": 0.9}
    rec["workload"] = {"batch_size": 1, "input_len": 512, "output_len": 512}
    (copy / "seed-plan").mkdir()
    (copy / "seed-plan" / "sim-seed-plan-8b.json").write_text(json.dumps(rec))
    rc, out, _ = _run(["--profiles", copy, "--params", params, "--json"])
    doc = json.loads(out)
    assert [s["profile_id"] for s in doc["seed_plan"]] == ["sim-seed-plan-8b"]
    s = doc["seed_plan"][0]
    assert s["most_likely"] == "preallocated pool"
    assert "sim-seed-plan-8b" not in {r["profile_id"] for r in doc["rows"]}


def test_bad_input_exits_2(tmp_path):
    rc, _, err = _run(["--profiles", tmp_path, "--params", tmp_path / "missing"])
    assert rc == 2 and "missing" in err
    rc, _, err = _run(["--profiles", tmp_path, "--params", tmp_path, "--alpha", "1.5"])
    assert rc == 2 and "alpha" in err
    rc, _, err = _run(["--profiles", tmp_path, "--params", tmp_path, "--max-error", "10"])
    assert rc == 2 and "latest.json" in err, "an empty coefficient folder must not pass the gate"


def test_accuracy_metrics_known_values():
    m = V.accuracy_metrics([0.1, 0.2, np.nan, 0.3, 0.4], [1, 0, np.nan, 1, 1])
    assert m["n"] == 4
    assert m["mape"] == pytest.approx(0.25)
    assert m["median_ape"] == pytest.approx(0.25)
    assert m["p90_ape"] == pytest.approx(0.37)  # linear interpolation between 0.3 and 0.4
    assert m["coverage"] == pytest.approx(0.75)
    assert V.accuracy_metrics([np.nan])["mape"] is None
