"""Baselines: the stated rules evaluated exactly, and computed from the profiles (not pasted)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fitting.report import baselines as B
from fitting.report.validate import validate
from tests._validation_data import PROFILES, committed_inputs

GIB = 2.0**30


def _features(w=10.0, w_total=20.0, kv=0.0, act=1.0, n=2.0, b=256.0):
    one = np.ones(1)
    return {"weights_gib": w * one, "weights_total_gib": w_total * one, "kv_gib": kv * one,
            "activations_gib": act * one, "model_mem_gib": (w + kv + act) * one, "n_gpus": n * one,
            "batch_size": b * one, "vocab_size": 32000.0 * one}


def test_rules_as_stated():
    """Each rule written out independently of the package (GiB per GPU)."""
    x = _features(w=10.0, w_total=20.0, kv=0.0, act=1.0, n=2.0, b=256.0)
    p = B.predictions(x, "vllm")
    M = 10.0 + 0.0 + 1.0
    assert p["seed_plan_8pct"][0] == pytest.approx(1.08 * M)
    # 14 GB (decimal) + 5 % + 15 % of the other GPUs' weights + 0.2 % x log2(256) = 8 doublings
    assert p["seed_plan_vllm"][0] == pytest.approx(M + 14e9 / GIB + 0.05 * M + 0.15 * 10.0 * 1 + 0.002 * M * 8)
    assert p["weights_x1_2"][0] == pytest.approx(12.0)
    assert p["weights_plus_650mb"][0] == pytest.approx(10.0 + 650e6 / GIB)
    # a growing framework: the workload KV is added to the rules without a KV term
    g = B.predictions(_features(w=10.0, kv=3.0, act=1.0, n=1.0, w_total=10.0, b=4.0), "transformers")
    assert g["seed_plan_8pct"][0] == pytest.approx(1.08 * 14.0)
    assert g["weights_x1_2"][0] == pytest.approx(15.0)
    assert g["weights_plus_650mb"][0] == pytest.approx(13.0 + 650e6 / GIB)
    assert np.isnan(g["seed_plan_vllm"][0]), "the vLLM constants do not apply to other frameworks"


def test_unknown_seed_constants_are_not_invented():
    for fw in ("tgi", "llamacpp", "trtllm"):
        assert "not known to us" in B.UNKNOWN_SEED_CONSTANTS[fw]
        assert np.isnan(B.predictions(_features(), fw)["seed_plan_vllm"]).all()


@pytest.fixture(scope="module")
def vllm_copy(tmp_path_factory):
    """A copy of the committed vLLM profiles and the coefficient folder."""
    tmp = tmp_path_factory.mktemp("baselines")
    _, params = committed_inputs(tmp)
    prof = tmp / "profiles"
    shutil.copytree(PROFILES / "public" / "vllm", prof / "vllm")
    return prof, params


def _baseline_apes(prof, params):
    res = validate(prof, params, lomo=False, frameworks=["vllm"])
    doc = res.to_dict()
    return res.rows.set_index("profile_id"), doc["baselines"]["by_framework"]["vllm"]["methods"]


def test_changing_a_profile_changes_every_baselines_error(vllm_copy):
    """Raise one real profile's measured non-torch memory by 1 GiB: every baseline's error on
    it and its MAPE change; raise its tensor-parallel degree: every prediction changes."""
    prof, params = vllm_copy
    rows0, methods0 = _baseline_apes(prof, params)
    names = [b.name for b in B.BASELINES]
    def with_non_torch(pid):
        rec = json.loads(next(prof.rglob(f"{pid}.json")).read_text())
        return any(k in rec["measured"] for k in ("non_torch_gib", "non_torch_mib", "non_torch_gb"))

    # a profile with a measured non-torch figure (not one whose non-KV is u x G - KV)
    pid = next(p for p, r in rows0.iterrows() if r["tp"] == 1 and np.isfinite(r["pred_gib"])
               and all(np.isfinite(r[f"baseline_{n}_ape"]) for n in names) and with_non_torch(p))
    path = next(prof.rglob(f"{pid}.json"))
    rec = json.loads(path.read_text())
    key = next(k for k in ("non_torch_gib", "non_torch_mib", "non_torch_gb") if k in rec["measured"])
    unit = {"non_torch_gib": 1.0, "non_torch_mib": 1024.0, "non_torch_gb": GIB / 1e9}[key]
    rec["measured"][key] += 1.0 * unit
    path.write_text(json.dumps(rec))
    rows1, methods1 = _baseline_apes(prof, params)
    assert rows1.loc[pid, "measured_gib"] == pytest.approx(rows0.loc[pid, "measured_gib"] + 1.0, rel=1e-9)
    for n in names:
        assert rows1.loc[pid, f"baseline_{n}_ape"] != pytest.approx(rows0.loc[pid, f"baseline_{n}_ape"], rel=1e-6), n
        assert methods1[n]["overall"]["mape"] != pytest.approx(methods0[n]["overall"]["mape"], rel=1e-9), n
        # predictions do not depend on the measurement
        assert rows1.loc[pid, f"baseline_{n}_gib"] == pytest.approx(rows0.loc[pid, f"baseline_{n}_gib"], rel=1e-12)
    # ... but on the configuration: 2 GPUs halve the weights per GPU
    rec = json.loads(path.read_text())
    rec.setdefault("parallel", {})["tp"] = 2
    rec.setdefault("gpu", {})["count"] = 2
    path.write_text(json.dumps(rec))
    rows2, _ = _baseline_apes(prof, params)
    for n in names:
        assert rows2.loc[pid, f"baseline_{n}_gib"] != pytest.approx(rows1.loc[pid, f"baseline_{n}_gib"], rel=1e-6), n


def test_comparison_table_has_ours_and_every_baseline(vllm_copy):
    prof, params = vllm_copy
    _, methods = _baseline_apes(prof, params)
    assert set(methods) == {"ours_lomo", "ours_in_sample", *(b.name for b in B.BASELINES)}
    ours = methods["ours_in_sample"]["overall"]
    assert ours["coverage"] is not None
    for b in B.BASELINES:
        assert methods[b.name]["overall"]["coverage"] is None, "baselines have no intervals"
        assert methods[b.name]["overall"]["n"] == ours["n"]
