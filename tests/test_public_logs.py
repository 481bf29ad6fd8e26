"""The public measurements as profiles: nothing dropped, figures kept exactly, deterministic.

Checks the converter against the raw records in ../shared/data/public-logs and the
committed profiles under profiles/public against a fresh conversion.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fitting.data import public_logs_rules as rules
from fitting.data.profiles import FRAMEWORKS, load_profiles, split_measured_name
from fitting.data import public_logs
from fitting.data.public_logs import SOURCE_FILES, convert, convert_all, is_converter_output, main, write_profiles
from fitting.units import UNIT_BYTES

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT.parent / "shared" / "data" / "public-logs"
COMMITTED = ROOT / "profiles" / "public"

pytestmark = pytest.mark.skipif(not (SRC / "vllm.jsonl").exists(), reason=f"public logs not found at {SRC}")


@pytest.fixture(scope="module")
def raw():
    """{file: {line: record}} of the source files."""
    out = {}
    for name in SOURCE_FILES:
        lines = (SRC / name).read_text(encoding="utf-8").splitlines()
        out[name] = {i: json.loads(line) for i, line in enumerate(lines, start=1) if line.strip()}
    return out


@pytest.fixture(scope="module")
def profiles():
    return convert(SRC)


@pytest.fixture(scope="module")
def by_line(profiles):
    """{(file, line): profile} for every source line."""
    out = {}
    for p in profiles:
        name = p["provenance"]["source_file"].rsplit("/", 1)[1]
        for line in p["provenance"]["source_lines"]:
            out[(name, line)] = p
    return out


COUNTS = ("kv_cache_tokens", "num_gpu_blocks")


def _gib(p, quantity):
    """The profile's figure for ``quantity`` in GiB (None when absent)."""
    for name, value in p["measured"].items():
        if name not in COUNTS and split_measured_name(name)[0] == quantity:
            return value * UNIT_BYTES[split_measured_name(name)[1]] / 2**30
    return None


# --------------------------------------------------------------------------- nothing dropped

def test_every_source_record_is_in_exactly_one_profile(raw, profiles):
    seen = []
    for p in profiles:
        name = p["provenance"]["source_file"].rsplit("/", 1)[1]
        seen += [(name, line) for line in p["provenance"]["source_lines"]]
    expected = [(name, line) for name in SOURCE_FILES for line in raw[name]]
    assert len(seen) == len(set(seen)), "a source record is in two profiles"
    assert sorted(seen) == sorted(expected)
    assert len(expected) == 1013  # 233 + 105 + 675 per the data README
    # only the Dec-2023 optimum-benchmark sweep is merged (one profile per run and phase)
    merged = [p for p in profiles if len(p["provenance"]["source_lines"]) > 1]
    assert merged and all(p["series"].startswith("optimum-benchmark-dec2023") for p in merged)
    assert len(profiles) == 1013 - sum(len(p["provenance"]["source_lines"]) - 1 for p in merged)


def test_profiles_are_valid_unique_and_in_framework_folders(profiles, tmp_path):
    write_profiles(profiles, tmp_path)
    loaded = load_profiles(tmp_path, strict=True)
    assert len(loaded) == len(profiles)
    assert {p.parent.name for p in tmp_path.rglob("*.json")} <= set(FRAMEWORKS)
    for rec in loaded:
        assert rec.path.parent.name == rec.framework
        assert rec["provenance"]["kind"] == "public-log" and rec["provenance"]["evidence"]
        assert rec["kv_cache_mode"] == ("pool" if rec.framework in rules.POOL_FRAMEWORKS else "growing")


def test_conversion_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_profiles(convert(SRC), a)
    write_profiles(convert(SRC), b)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.json"))
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*.json"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)


def test_committed_profiles_match_a_fresh_conversion(tmp_path):
    assert COMMITTED.is_dir(), "run: python -m fitting.public_logs --src ../shared/data/public-logs --out profiles/public"
    write_profiles(convert(SRC), tmp_path)
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*.json")}
    committed = {p.relative_to(COMMITTED): p.read_bytes() for p in COMMITTED.glob("*/*.json")
                 if is_converter_output(p)}  # the harvested logs (fitting.ingest.harvest) are checked elsewhere
    assert set(committed) == set(fresh), "profiles/public is stale: re-run the converter"
    assert all(committed[k] == fresh[k] for k in fresh), "profiles/public is stale: re-run the converter"


def test_stale_files_are_removed(tmp_path, profiles):
    (tmp_path / "vllm").mkdir()
    stale = tmp_path / "vllm" / "vllm-old-profile.json"
    stale.write_text("{}", encoding="utf-8")
    write_profiles(profiles[:3], tmp_path)
    assert not stale.exists()
    assert len(list(tmp_path.rglob("*.json"))) == 3


# --------------------------------------------------------------------------- figures kept exactly

def test_pr10511_record_exactly(by_line):
    p = by_line[("vllm.jsonl", 1)]
    assert p["provenance"]["url"] == "https://github.com/vllm-project/vllm/pull/10511"
    assert p["measured"] == {"weights_gib": 14.96, "kv_cache_gib": 53.29, "activation_peak_gib": 1.26,
                             "non_torch_gib": 1.79}
    assert p["model"] == {"id": "meta-llama/Meta-Llama-3-8B", "name_as_given": "meta-llama/Meta-Llama-3-8B"}
    assert "model weights take 14.96GiB" in p["provenance"]["evidence"]
    assert p["use_in_fit"] and p["parallel"]["tp"] == 1 and p["engine_settings"]["gpu_memory_utilization"] == 0.9


def test_every_vllm_figure_is_kept(raw, by_line):
    for line, r in raw["vllm.jsonl"].items():
        p = by_line[("vllm.jsonl", line)]
        for key in ("weights_gib", "non_torch_gib", "activation_peak_gib", "kv_cache_gib",
                    "kv_cache_tokens", "num_gpu_blocks"):
            assert p["measured"].get(key) == r[key], (line, key)  # absent stays absent (never 0)
        if r["cuda_graph_gib"] is not None and "cuda_graph_gib" not in p["measured"]:
            # only an estimate was printed: it is kept as vLLM's estimate, not as a measurement
            assert p["engine_settings"]["cuda_graph_estimate_gib"] == r["cuda_graph_gib"]
            assert "Estimated CUDA graph memory" in r["evidence"]
        else:
            assert p["measured"].get("cuda_graph_gib") == r["cuda_graph_gib"], line
        if r.get("cuda_graph_est_gib") is not None:
            assert p["engine_settings"]["cuda_graph_estimate_gib"] == r["cuda_graph_est_gib"]
        assert p["model"].get("name_as_given") == r["model_id"]


def test_v064_peak_torch_goes_to_peak_torch(by_line, raw):
    p = by_line[("vllm.jsonl", 8)]
    assert "peak_torch_memory=17.06GiB" in raw["vllm.jsonl"][8]["evidence"]
    assert p["measured"]["peak_torch_gib"] == 17.06
    assert "activation_peak_gib" not in p["measured"]
    with_peak_torch = [k for k, r in raw["vllm.jsonl"].items() if "peak_torch_memory=" in r["evidence"]]
    assert len(with_peak_torch) >= 5
    assert all("peak_torch_gib" in by_line[("vllm.jsonl", k)]["measured"] for k in with_peak_torch)


def test_every_other_framework_figure_is_kept(raw, by_line):
    fields = {"weights_gib": "weights", "weights_cpu_gib": "weights_cpu", "kv_cache_gib": "kv_cache",
              "compute_buffer_gib": "compute_buffer", "cuda_graph_gib": "cuda_graph", "other_gib": "other"}
    for line, r in raw["other_frameworks.jsonl"].items():
        p = by_line[("other_frameworks.jsonl", line)]
        for key, quantity in fields.items():
            got = _gib(p, quantity)
            if r[key] is None:
                # absent in the dataset: present only when read from the printed text (e.g. a raw 'MB' figure)
                names = [n for n in p["measured"] if n.startswith(quantity + "_") and n not in COUNTS
                         and split_measured_name(n)[0] == quantity]
                for n in names:
                    assert f"{p['measured'][n]:g}" in r["evidence"] + (r["notes"] or ""), (line, n)
            else:
                assert math.isclose(got, r[key], rel_tol=1e-12, abs_tol=0), (line, key, got, r[key])
        if r["total_reported_gib"] is not None:
            got = _gib(p, "peak_allocated") or _gib(p, "peak_total")
            assert math.isclose(got, r["total_reported_gib"], rel_tol=1e-12), line


def test_llamacpp_figures_in_mib_as_printed(by_line):
    p = by_line[("other_frameworks.jsonl", 2)]  # llama.cpp b7342, Qwen3-Coder-30B-A3B Q8_0
    assert p["measured"]["weights_mib"] == 30658.12 and p["measured"]["kv_cache_mib"] == 6144.0
    assert p["measured"]["compute_buffer_mib"] == 300.75
    assert "CUDA0 model buffer size = 30658.12 MiB" in p["provenance"]["evidence"]
    multi = by_line[("other_frameworks.jsonl", 1)]  # ik_llama.cpp on 2x T4: sums over devices
    assert multi["measured_scope"] == "sum_over_gpus" and multi["measured"]["kv_cache_mib"] == 3072.0
    assert not multi["use_in_fit"] and "fork_build" in multi["flags"]


def test_every_sweep_figure_is_kept(raw, by_line):
    for line, r in raw["sweeps.jsonl"].items():
        p = by_line[("sweeps.jsonl", line)]
        matches = [k for k, v in p["measured"].items() if v == r["value"]]
        assert matches, (line, r["value"], p["measured"])
        assert r["series"].startswith(p["series"])


def test_sweep_units_and_measures(by_line):
    gptq = by_line[("sweeps.jsonl", 1)]
    assert gptq["measured"] == {"peak_total_mb": 29152.98} and gptq["use_in_fit"]
    awq = by_line[("sweeps.jsonl", 96)]
    assert awq["measured"] == {"peak_allocated_gib": 4.66}  # printed 'GB', computed /1024**3
    assert "running_maximum" in awq["flags"] and not awq["use_in_fit"]
    torchao = by_line[("sweeps.jsonl", 633)]
    assert torchao["measured"] == {"peak_reserved_gb": 17.86} and torchao["framework"] == "pytorch"
    aug = by_line[("sweeps.jsonl", 144)]
    assert aug["measured"] == {"peak_total_mb": 28107.0}
    # optimum-benchmark's bytes_to_mega_bytes() is int(bytes * 1e-6) at the commit of the report
    assert "unit_base_unverified" not in aug["flags"] and "int(bytes * 1e-6)" in aug["measurement_notes"]
    # its tracker reads NVML after the call, without emptying the cache first (before Nov 2023)
    assert {"nvml_used_after_call", "cache_not_emptied"} <= set(aug["flags"])


def test_optimum_benchmark_tracker_flags_gpu_and_quantization(by_line, profiles):
    """What optimum-benchmark's own files state is applied: the MB base (env_utils.py), the
    NVML-after-call tracker (trackers/memory.py; empty_cache + reset only from c8bbe4e, Nov
    2023), the running-mistrals GPU (full_report.csv) and its bitsandbytes config (bnb.yaml)."""
    dec = [p for p in profiles if (p.get("series") or "").startswith("optimum-benchmark-dec2023")]
    assert dec and all("unit_base_inferred" not in p["flags"] and "unit_base_unverified" not in p["flags"]
                       for p in dec)
    assert all("cache_not_emptied" not in p["flags"] for p in dec)
    assert all("nvml_used_after_call" in p["flags"] for p in dec if "peak_total_mb" in p["measured"])
    mistral = [p for p in profiles if (p.get("series") or "").startswith("optimum-benchmark-oct2023_mistral7b")]
    assert len(mistral) == 40 and {p["gpu"]["name"] for p in mistral} == {"NVIDIA A100-SXM4-80GB"}
    bnb = [p for p in mistral if "_bnb_" in p["series"]]
    assert len(bnb) == 10 and all(p["precision"]["quantization"].startswith("bitsandbytes 4-bit fp4") for p in bnb)
    assert all("bnb.yaml" in p["measurement_notes"] for p in bnb)


def test_dec2023_measures_of_one_run_are_merged(raw, by_line):
    p = by_line[("sweeps.jsonl", 154)]
    lines = p["provenance"]["source_lines"]
    assert len(lines) == 3
    kinds = {raw["sweeps.jsonl"][k]["series"].rsplit("_", 1)[1]: raw["sweeps.jsonl"][k]["value"] for k in lines}
    assert p["measured"] == {"peak_allocated_mb": kinds["alloc"], "peak_reserved_mb": kinds["resv"],
                             "peak_total_mb": kinds["used"]}
    assert p["series"] == "optimum-benchmark-dec2023_llama-7b_A100-80GB_fp16_gen"
    assert p["workload"]["phase"] == "generate" and p["use_in_fit"]
    assert "nvml_used_after_call" in p["flags"] and "unit_base_inferred" not in p["flags"]
    for k in lines:  # the original series labels are kept in the notes
        assert raw["sweeps.jsonl"][k]["series"] in p["measurement_notes"]
    fwd = by_line[("sweeps.jsonl", 157)]  # forward = one prefill pass: its own workload, the run's in the notes
    assert raw["sweeps.jsonl"][157]["series"].endswith("_fwd_resv")
    assert fwd["workload"] == {"batch_size": 1, "input_len": 256, "output_len": 0, "context_len": 256,
                               "phase": "prefill"}
    assert "output_len 512" in fwd["measurement_notes"]


# --------------------------------------------------------------------------- flags and models

def test_caveats_exclude_with_reasons(profiles):
    for p in profiles:
        assert p["use_in_fit"] == (p.get("exclude_reason") is None)
        if p["model"]["id"] is None:
            assert not p["use_in_fit"] and {"model_unnamed", "model_id_unresolved"} & set(p["flags"])
        for flag in ("unified_memory", "non_nvidia_gpu", "fork_build", "patched_build", "speculative_decoding",
                     "unit_base_unverified", "failed_run", "running_maximum", "duplicate_record"):
            if flag in p["flags"]:
                assert not p["use_in_fit"], (p["profile_id"], flag)
    flags = {f for p in profiles for f in p["flags"]}
    assert {"unified_memory", "non_nvidia_gpu", "fork_build", "patched_build", "speculative_decoding",
            "unit_base_unverified", "model_unnamed"} <= flags


def test_model_mapping_table(raw, profiles):
    names = {r.get("model_id") for f in SOURCE_FILES for r in raw[f].values()}
    assert set(rules.MODEL_TABLE) <= names, "stale MODEL_TABLE entries"
    for p in profiles:
        given = p["model"].get("name_as_given")
        if given in rules.MODEL_TABLE:
            assert p["model"]["id"] == rules.MODEL_TABLE[given][0]
        elif p["model"]["id"] is not None:
            assert p["model"]["id"] == given and rules.HF_ID.match(given)
    qwen = [p for p in profiles if p["model"].get("name_as_given") == "Qwen3-30B-A3B (unsloth UD-Q4_K_XL gguf)"]
    assert [p["model"]["weight_format"] for p in qwen] == ["UD-Q4_K_XL"]
    assert qwen[0]["model"]["id"] == "Qwen/Qwen3-30B-A3B"


# --------------------------------------------------------------------------- CLI

def test_cli_writes_and_summarises(tmp_path, capsys):
    assert main(["--src", str(SRC), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "vllm" in out and "total" in out
    assert len(list(tmp_path.rglob("*.json"))) == len(convert(SRC))


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "--src" in capsys.readouterr().out


def _copy_sources(dst):
    dst.mkdir(parents=True, exist_ok=True)
    for name in SOURCE_FILES:
        (dst / name).write_text((SRC / name).read_text(encoding="utf-8"), encoding="utf-8")
    return dst


def _poison(src):
    """A shared-data copy with one negative figure and one malformed line; returns their (file, line)."""
    path = src / "other_frameworks.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    target = next(i for i, line in enumerate(lines) if json.loads(line).get("weights_gib") is not None)
    rec = json.loads(lines[target])
    rec["weights_gib"] = -0.42  # an "estimate minus actual" column copied into a figure
    lines[target] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with open(src / "sweeps.jsonl", "a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    return ("other_frameworks.jsonl", target + 1), ("sweeps.jsonl", 676)


def test_bad_records_are_left_out_with_reasons_the_rest_converted(tmp_path, profiles):
    src = _copy_sources(tmp_path / "src")
    negative, malformed = _poison(src)
    result = convert_all(src)
    assert [(r.file, r.line) for r in result.rejected] == [negative, malformed]
    assert "negative memory -" in result.rejected[0].reason
    assert "measured.weights_" in result.rejected[0].reason
    assert "invalid JSON" in result.rejected[1].reason
    # every other record is converted, exactly as from the clean data
    clean = {p["profile_id"]: p for p in profiles}
    got = {p["profile_id"]: p for p in result.profiles}
    lost = [pid for pid, p in clean.items() if pid not in got]
    assert len(lost) == 1 and clean[lost[0]]["provenance"]["source_lines"] == [negative[1]]
    assert len(got) == len(clean) - 1
    for pid, p in got.items():  # identical but for the sha256 of the (edited) source files
        strip = lambda q: {**q, "provenance": {k: v for k, v in q["provenance"].items() if k != "source_sha256"}}  # noqa: E731
        assert strip(clean[pid]) == strip(p)


def test_cli_keeps_going_on_bad_input_and_lists_the_rejects(tmp_path, capsys):
    src = _copy_sources(tmp_path / "src")
    negative, malformed = _poison(src)
    out = tmp_path / "out"
    assert main(["--src", str(src), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "2 source record(s) left out" in captured.err
    assert f"other_frameworks.jsonl: line {negative[1]}: fails validation" in captured.err
    assert "sweeps.jsonl: line 676: invalid JSON" in captured.err
    assert len(list(out.rglob("*.json"))) == len(convert(SRC)) - 1
    assert len(load_profiles(out, strict=True)) == len(convert(SRC)) - 1
    # --strict: nothing written
    assert main(["--src", str(src), "--out", str(tmp_path / "strict"), "--strict"]) == 1
    assert not (tmp_path / "strict").exists()


def test_missing_source_file_is_an_error_and_writes_nothing(tmp_path, capsys):
    src = _copy_sources(tmp_path / "src")
    (src / "vllm.jsonl").unlink()
    assert main(["--src", str(src), "--out", str(tmp_path / "out")]) == 1
    assert "vllm.jsonl" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_output_folder_is_replaced_atomically(tmp_path, profiles, monkeypatch):
    out = tmp_path / "public"
    write_profiles(profiles[:5], out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    calls = {"n": 0}
    real = public_logs.write_profile

    def failing(record, directory):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(record, directory)

    monkeypatch.setattr(public_logs, "write_profile", failing)
    with pytest.raises(OSError):
        write_profiles(profiles[5:20], out)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before, "a failed write changed the output folder"
    assert [p.name for p in tmp_path.iterdir()] == ["public"], "staging folder left behind"


def test_other_converters_files_and_logs_are_carried_over(tmp_path, profiles):
    out = tmp_path / "public"
    write_profiles(profiles[:3], out)
    foreign = dict(profiles[0], profile_id="llamacpp-harvested-example-0000000000", framework="llamacpp")
    foreign["provenance"] = dict(foreign["provenance"], converter="fitting.ingest.harvest 0.0")
    (out / "llamacpp").mkdir(exist_ok=True)
    kept = out / "llamacpp" / f"{foreign['profile_id']}.json"
    kept.write_text(json.dumps(foreign), encoding="utf-8")
    log = out / "llamacpp" / "logs" / "example.log"
    log.parent.mkdir()
    log.write_text("llama_kv_cache: size = 1.00 MiB\n", encoding="utf-8")
    stale = out / "vllm" / "vllm-old-profile.json"
    stale.write_text("{}", encoding="utf-8")
    write_profiles(profiles[3:6], out)
    assert kept.exists() and log.exists() and not stale.exists()
    ours = [p for p in out.rglob("*.json") if "logs" not in p.parts and p != kept]
    assert sorted(p.stem for p in ours) == sorted(p["profile_id"] for p in profiles[3:6])
