"""optimum-benchmark reports (profiles/public/transformers/reports/*.report) -> profiles.

The committed profiles equal a fresh conversion; the stored reports are the public files
byte for byte; MB is 1e6 bytes; the two report targets map to the documented phases; bad
input names the file and the field; the three converters sharing profiles/public never
remove each other's files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from fitting.data.profiles import load_profiles
from fitting.data.public_logs import is_converter_output, write_profiles
from fitting.data.transformers_settings import transformers_settings_from_profile
from fitting.ingest.harvest import write_harvest
from fitting.ingest.optimum_benchmark import (CONVERTER, OptimumBenchmarkError, convert_report, convert_reports, is_ours,
                                              main, read_report, write_reports)

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ROOT / "profiles" / "public"
REPORTS = PUBLIC / "transformers" / "reports"
COMMIT = "7adbd491e889cfe0fe4f59f6f91a67cd6602f9fa"
RUNS = ("cuda_pytorch_llama", "llama_awq", "llama_gptq", "llama_gptq_2bit", "llama_torchao_int4wo",
        "llama_aqlm_pv_2bit", "llama_vptq", "llama8b_fpgemm", "llama70b_fbgemm", "llama70b_compile")


@pytest.fixture(scope="module")
def converted():
    profiles, problems = convert_reports(PUBLIC)
    assert not problems, problems
    return profiles


def _by_run(profiles):
    out = {}
    for p in profiles:
        run = Path(p["provenance"]["source_file"]).stem
        out.setdefault(run, {})[p["workload"]["phase"]] = p
    return out


def _copy_root(tmp_path, runs=RUNS):
    root = tmp_path / "public"
    (root / "transformers" / "reports").mkdir(parents=True)
    for run in runs:
        for suffix in (".report", ".source.yaml"):
            shutil.copy2(REPORTS / f"{run}{suffix}", root / "transformers" / "reports" / f"{run}{suffix}")
    return root


def test_committed_profiles_match_a_fresh_conversion(converted, tmp_path):
    write_reports(converted, tmp_path)
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.glob("*/*.json")}
    committed = {p.relative_to(PUBLIC): p.read_bytes() for p in PUBLIC.glob("*/*.json") if is_ours(p)}
    assert set(committed) == set(fresh), "run: python -m fitting.ingest.optimum_benchmark --root profiles/public"
    assert all(committed[k] == fresh[k] for k in fresh), "run: python -m fitting.ingest.optimum_benchmark"


def test_every_stored_report_is_converted_with_its_source(converted):
    assert sorted(p.stem for p in REPORTS.glob("*.report")) == sorted(RUNS)
    by_run = _by_run(converted)
    assert sorted(by_run) == sorted(RUNS) and all(set(v) == {"prefill", "generate"} for v in by_run.values())
    for p in converted:
        prov = p["provenance"]
        run = Path(prov["source_file"]).stem
        assert prov["kind"] == "public-log" and prov["converter"] == CONVERTER
        assert prov["url"] == (f"https://github.com/DerekLiu35/huggingface-quantization-benchmarking-code/blob/"
                               f"{COMMIT}/runs/{run}/benchmark.json")
        assert prov["source_file"] == f"profiles/public/transformers/reports/{run}.report"
        assert len(prov["source_sha256"]) == 64 and "max_allocated" in prov["evidence"]
        assert p["framework"] == "transformers" and p["kv_cache_mode"] == "growing"
        assert p["framework_version"].startswith("transformers 4.")


def test_stored_reports_are_the_public_files_byte_for_byte():
    """Blob ids of runs/<run>/benchmark.json at the commit (git ls-tree), i.e. sha1 of 'blob <size>\\0' + bytes."""
    import hashlib

    blobs = {"cuda_pytorch_llama": "9c082f144df811a7bba3e1a8b377aae289032f81",
             "llama70b_compile": "d6033b6270a87cb53e1d592becbc1b1d52ece74e",
             "llama70b_fbgemm": "998dfd2647eb39adbb64fc257a2be767ecb56a3f",
             "llama8b_fpgemm": "e9579a61bb543d13ad830d79d325ac0cb3e1cda6",
             "llama_aqlm_pv_2bit": "67f753cf2a8830cc8bb867aaad6d8430a46503b9",
             "llama_awq": "8b4a23ab429e214cc90bf55e1dc1aa5dcac7e9b0",
             "llama_gptq": "1aac11f993f6989c699fb0c9cb6cb671c7b09b13",
             "llama_gptq_2bit": "522ac68cf176f53c2b713e27a9a897b064d5a6ef",
             "llama_torchao_int4wo": "ccfe254f2b994e360f71480f667694c0e0f29301",
             "llama_vptq": "efdda565fd7c3c322967cee832d2ce178e875d8c"}
    for run, blob in blobs.items():
        raw = (REPORTS / f"{run}.report").read_bytes()
        assert hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest() == blob, run


def test_hand_checked_record_mb_is_1e6_bytes(converted):
    """cuda_pytorch_llama, report.prefill.memory: max_allocated 16085.594624, max_reserved 16240.345088,
    max_global_vram 17699.897344 (MB = 1e6 bytes)."""
    p = _by_run(converted)["cuda_pytorch_llama"]["prefill"]
    assert p["measured"] == {"peak_allocated_mb": 16085.594624, "peak_reserved_mb": 16240.345088,
                             "peak_total_mb": 17699.897344}
    loaded = load_profiles(PUBLIC / "transformers" / f"{p['profile_id']}.json")
    row = loaded.to_frame().iloc[0]
    assert row["peak_allocated_gib"] == pytest.approx(16085.594624e6 / 2**30, rel=1e-12)
    assert row["peak_allocated_gib"] == pytest.approx(14.98088, abs=1e-5)  # by hand: 16085594624 / 1073741824
    assert row["peak_total_gib"] == pytest.approx(17699.897344e6 / 2**30, rel=1e-12)
    assert p["model"]["id"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert p["gpu"] == {"name": "NVIDIA A100-SXM4-80GB", "count": 1} and p["measured_scope"] == "per_gpu"
    assert p["precision"] == {"dtype": "bfloat16", "kv_cache_dtype": "bfloat16"}
    assert p["workload"] == {"batch_size": 1, "input_len": 64, "output_len": 1, "context_len": 64, "phase": "prefill"}
    assert p["use_in_fit"] and "cache_from_warmup" in p["flags"] and "cache_not_emptied" not in p["flags"]


def test_phases_map_as_documented(converted):
    for run, phases in _by_run(converted).items():
        pre, gen = phases["prefill"], phases["generate"]
        data = json.loads((REPORTS / f"{run}.report").read_text(encoding="utf-8"))
        mem = data["report"]
        assert pre["measured"]["peak_allocated_mb"] == mem["prefill"]["memory"]["max_allocated"]
        assert gen["measured"]["peak_allocated_mb"] == mem["decode"]["memory"]["max_allocated"]
        assert gen["measured"]["peak_reserved_mb"] == mem["decode"]["memory"]["max_reserved"]
        assert pre["workload"]["output_len"] == 1
        assert gen["workload"]["output_len"] == data["config"]["scenario"]["generate_kwargs"]["max_new_tokens"] == 64
        assert pre["workload"]["input_len"] == gen["workload"]["input_len"] == 64
        # both targets are generate() calls: the fit's settings model generate, not a bare forward
        for p in (pre, gen):
            s = transformers_settings_from_profile({"series": p["series"], "measurement_notes": p["measurement_notes"],
                                                    "framework_version": p["framework_version"],
                                                    "attention_impl": p["engine_settings"]["attention_impl"],
                                                    "quantization": p["precision"].get("quantization"),
                                                    "phase": p["workload"]["phase"]})
            assert s["mode"] == "generate" and s["attn_implementation"] == "sdpa"
            assert s["version"] == data["config"]["environment"]["transformers_version"]


def test_peak_total_is_nvml_device_used_and_dropped_with_idle_visible_gpus(converted):
    by_run = _by_run(converted)
    gptq = by_run["llama_gptq"]["prefill"]  # device_ids 0,1,2,3,4 with device_map null
    assert "peak_total_mb" not in gptq["measured"] and "extra_visible_gpus" in gptq["flags"]
    assert gptq["gpu"] == {"name": "NVIDIA A100-SXM4-80GB", "count": 1}
    assert gptq["precision"]["quantization"] == "gptq-int4-g128 (exllama v1 kernel)"
    assert gptq["precision"]["dtype"] == "float16"
    big = by_run["llama70b_compile"]["generate"]  # device_map auto over 2 GPUs
    assert big["measured_scope"] == "sum_over_gpus" and big["gpu"]["count"] == 2 and big["parallel"] == {"pp": 2}
    assert big["measured"]["peak_total_mb"] == 144667.705344
    assert big["engine_settings"]["cache_implementation"] == "static" and big["workload"]["context_len"] == 128
    assert by_run["llama70b_fbgemm"]["prefill"]["gpu"]["name"] == "NVIDIA H100 80GB HBM3"
    assert by_run["llama70b_fbgemm"]["prefill"]["precision"]["quantization"] == "fp8-per-channel"
    assert by_run["llama_torchao_int4wo"]["prefill"]["precision"] == {
        "dtype": "bfloat16", "quantization": "int4wo-g128", "kv_cache_dtype": "bfloat16"}


def test_excluded_runs_say_why(converted):
    by_run = _by_run(converted)
    for run, flag in (("llama_gptq_2bit", "quantized_at_load"), ("llama_awq", "kernel_not_modelled")):
        for p in by_run[run].values():
            assert not p["use_in_fit"] and flag in p["flags"] and p["exclude_reason"]
    used = {run for run, ph in by_run.items() if ph["prefill"]["use_in_fit"]}
    assert used == set(RUNS) - {"llama_gptq_2bit", "llama_awq"}


def test_missing_field_names_the_file_and_field(tmp_path):
    root = _copy_root(tmp_path, ("cuda_pytorch_llama",))
    path = root / "transformers" / "reports" / "cuda_pytorch_llama.report"
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["report"]["decode"]["memory"]["max_allocated"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(OptimumBenchmarkError) as info:
        convert_report(read_report(path, root))
    assert str(path) in str(info.value) and "report.decode.memory.max_allocated" in str(info.value)
    assert info.value.field == "report.decode.memory.max_allocated"
    profiles, problems = convert_reports(root)
    assert profiles == [] and len(problems) == 1 and "report.decode.memory.max_allocated: missing field" in problems[0]


@pytest.mark.parametrize("edit, field", [
    (lambda d: d["report"]["prefill"]["memory"].update(unit="MiB"), "report.prefill.memory.unit"),
    (lambda d: d["report"]["prefill"]["memory"].update(max_reserved="16240"), "report.prefill.memory.max_reserved"),
    (lambda d: d["config"]["scenario"]["input_shapes"].pop("batch_size"), "config.scenario.input_shapes.batch_size"),
    (lambda d: d["config"]["environment"].update(gpu=["NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3"],
                                                 ) or d["config"]["backend"].update(device_ids="0,1"),
     "config.environment.gpu"),
])
def test_malformed_fields_name_the_field(tmp_path, edit, field):
    root = _copy_root(tmp_path, ("cuda_pytorch_llama",))
    path = root / "transformers" / "reports" / "cuda_pytorch_llama.report"
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(OptimumBenchmarkError) as info:
        convert_report(read_report(path, root))
    assert info.value.field == field and str(path) in str(info.value)


def test_corrupt_report_and_bad_sidecar_name_the_file(tmp_path):
    root = _copy_root(tmp_path, ("cuda_pytorch_llama", "llama_vptq"))
    bad = root / "transformers" / "reports" / "cuda_pytorch_llama.report"
    bad.write_bytes(bad.read_bytes()[:5000])  # truncated download
    with pytest.raises(OptimumBenchmarkError, match=r"cuda_pytorch_llama\.report: json: invalid JSON at line"):
        read_report(bad, root)
    side = root / "transformers" / "reports" / "llama_vptq.source.yaml"
    doc = yaml.safe_load(side.read_text(encoding="utf-8"))
    side.write_text(yaml.safe_dump({**doc, "modle": "x"}), encoding="utf-8")
    with pytest.raises(OptimumBenchmarkError, match=r"llama_vptq\.source\.yaml: modle: unknown sidecar key"):
        read_report(side.with_name("llama_vptq.report"), root)
    side.unlink()
    with pytest.raises(OptimumBenchmarkError, match=r"llama_vptq\.source\.yaml: file: no sidecar"):
        read_report(side.with_name("llama_vptq.report"), root)
    assert main(["--root", str(root), "--dry-run"]) == 1  # both left out, listed on stderr


def test_converters_never_remove_each_others_files(converted, tmp_path):
    root = _copy_root(tmp_path)
    write_reports(converted, root)
    ours = sorted(p.name for p in (root / "transformers").glob("*.json"))
    assert len(ours) == 20
    # fitting.public_logs replaces the folder, carrying over what it did not write
    write_profiles([], root, clean=True)
    assert sorted(p.name for p in (root / "transformers").glob("*.json")) == ours
    assert sorted(p.name for p in (root / "transformers" / "reports").iterdir()) == sorted(
        f"{run}{suffix}" for run in RUNS for suffix in (".report", ".source.yaml"))
    # fitting.ingest.harvest removes only its own stale files
    write_harvest([], root)
    assert sorted(p.name for p in (root / "transformers").glob("*.json")) == ours
    # this converter removes only its own stale files
    foreign = {"public_logs": "fitting.public_logs 0.1.0", "harvest": "fitting.ingest.harvest 0.1.0"}
    for name, conv in foreign.items():
        (root / "transformers" / f"transformers-{name}-x.json").write_text(
            json.dumps({"provenance": {"converter": conv}}), encoding="utf-8")
    stale = root / "transformers" / "transformers-stale-ob.json"
    stale.write_text(json.dumps({"provenance": {"converter": CONVERTER}}), encoding="utf-8")
    write_reports(converted, root)
    assert not stale.exists()
    assert all((root / "transformers" / f"transformers-{n}-x.json").exists() for n in foreign)
    assert not is_converter_output(root / "transformers" / ours[0])  # public_logs keeps these


def test_loader_skips_the_reports_folder(tmp_path, converted):
    root = _copy_root(tmp_path)
    write_reports(converted, root)
    assert len(load_profiles(root, strict=True)) == 20


def test_cli_dry_run_writes_nothing_and_help(tmp_path, capsys):
    root = _copy_root(tmp_path)
    assert main(["--root", str(root), "--dry-run"]) == 0
    assert "20 profile(s) from 10 report(s)" in capsys.readouterr().out
    assert not list((root / "transformers").glob("*.json"))
    assert main(["--root", str(root)]) == 0
    assert len(list((root / "transformers").glob("*.json"))) == 20
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0 and "--dry-run" in capsys.readouterr().out
