"""The seed plan's four vLLM figures as profiles: committed, valid, excluded from fits, explained."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from fitting.data.seed_plan import main, seed_plan_profiles

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "profiles" / "seed-plan" / "vllm"
SCHEMA = json.loads((ROOT / "fitting" / "schemas" / "profile-v1.schema.json").read_text(encoding="utf-8"))
MODEL_CONFIGS = ROOT.parent / "shared" / "data" / "model_configs.yaml"

# the plan's figures as issue 5 quotes them: (model, figure in the plan's "GB", batch, tp)
PLAN = [("meta-llama/Llama-3.2-1B", 18.94, 1, None), ("mistralai/Mistral-7B-Instruct-v0.2", 20.28, 1, None),
        ("mistralai/Mistral-7B-Instruct-v0.2", 41.27, 8, None), ("zai-org/GLM-4.5", 125.0, None, 4)]


def test_committed_files_are_what_the_module_writes(tmp_path):
    assert main(["--out", str(tmp_path)]) == 0
    written = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "vllm").glob("*.json")}
    committed = {p.name: p.read_text(encoding="utf-8") for p in COMMITTED.glob("*.json")}
    assert written == committed and len(written) == 4


def test_profiles_carry_the_plan_figures_and_its_caveats():
    profiles = seed_plan_profiles()
    got = [(p["model"]["id"], p["measured"]["peak_total_gb"], p.get("workload", {}).get("batch_size"),
            p.get("parallel", {}).get("tp")) for p in profiles]
    assert got == PLAN
    for p in profiles:
        jsonschema.validate(p, SCHEMA)
        assert p["provenance"]["kind"] == "seed-plan" and p["use_in_fit"] is False
        assert set(p["measured"]) == {"peak_total_gb"}  # "GB" of unknown base stays _gb
        assert {"unit_base_unverified", "measurement_method_unknown", "gpu_memory_utilization_unknown"} <= set(p["flags"])
        assert "not recorded" in p["measurement_notes"] and "Most likely" in p["exclude_reason"]
        assert str(p["measured"]["peak_total_gb"]).rstrip("0").rstrip(".") in p["provenance"]["evidence"]
    llama = profiles[0]
    assert llama["precision"]["kv_cache_dtype"] == "fp8"
    assert (llama["workload"]["input_len"], llama["workload"]["output_len"]) == (512, 512)


def test_glm_explanation_matches_the_parameter_counts():
    if not MODEL_CONFIGS.exists():
        pytest.skip("shared model configs not available")
    configs = yaml.safe_load(MODEL_CONFIGS.read_text(encoding="utf-8"))
    glm_params = float(configs["zai-org/GLM-4.5"]["params"]["total"].rstrip("B")) * 1e9
    air_params = float(configs["zai-org/GLM-4.5-Air"]["params"]["total"].rstrip("B")) * 1e9
    glm = seed_plan_profiles()[3]
    assert glm_params * 2 > 125e9 * 4 / 4 and glm_params * 2 / 4 > 125e9  # bf16: neither total nor per GPU fits
    assert glm_params * 1 > 125e9 and air_params * 1 < 125e9  # FP8 GLM-4.5 total does not fit, FP8 Air does
    assert "cannot fit in 125 GB" in glm["exclude_reason"] and "GLM-4.5-Air" in glm["exclude_reason"]
    assert f"{glm_params / 1e9:.0f}B" in glm["exclude_reason"] and f"{air_params / 1e9:.0f}B" in glm["exclude_reason"]
