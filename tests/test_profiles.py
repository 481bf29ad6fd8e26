"""Profile records: validation errors, strict/non-strict loading, DataFrame, atomic write.

The profiles built here are SIMULATED (made-up figures to exercise the loader); real
profiles live under profiles/.
"""

from __future__ import annotations

import copy
import json
import math
import re

import pytest

from fitting.data.profiles import (
    COUNT_FIELDS,
    FRAME_COLUMNS,
    FRAMEWORKS,
    MEMORY_QUANTITIES,
    ProfileError,
    load_profile,
    load_profiles,
    split_measured_name,
    validate_profile,
    write_profile,
)
from fitting.data.profiles import _schema

#: Columns that docs/design.md ("Profiles") promises, in its order.
DESIGN_COLUMNS = (
    "profile_id path framework framework_version framework_variant engine model_id gpu_name gpu_memory_gib "
    "gpu_count tp pp batch_size input_len output_len context_len max_model_len max_num_seqs "
    "max_num_batched_tokens dtype quantization kv_cache_dtype gpu_memory_utilization enforce_eager "
    "kv_cache_mode measured_scope use_in_fit exclude_reason flags provenance_kind source series "
    "attention_impl phase measurement_notes provenance_notes provenance_evidence provenance_date n_ubatch flash_attn "
    "mem_fraction_static max_total_tokens language_model_only cuda_graph_estimate_gib n_gpu_layers n_layers_total measured_units "
    "cuda_memory_fraction model_runner compile_cache"
).split()


def simulated_profile(profile_id="sim-profile-001", **measured):
    """A minimal valid profile with made-up (simulated) figures."""
    return {
        "schema_version": 1,
        "profile_id": profile_id,
        "framework": "vllm",
        "model": {"id": "meta-llama/Llama-3.1-8B"},
        "gpu": {"name": "simulated GPU", "memory_gib": 80.0, "count": 1},
        "parallel": {"tp": 1},
        "engine_settings": {"gpu_memory_utilization": 0.9, "enforce_eager": False},
        "kv_cache_mode": "pool",
        "measured": measured or {"weights_gib": 14.96, "kv_cache_tokens": 1000},
        "provenance": {"kind": "measured", "evidence": "simulated test record", "run_id": "sim"},
    }


def write_raw(path, obj_or_text):
    text = obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text)
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path):
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    return info.value


# --------------------------------------------------------------------------- bad input

def test_valid_profile_loads(tmp_path):
    rec = load_profile(write_raw(tmp_path / "sim-profile-001.json", simulated_profile()))
    assert rec.profile_id == "sim-profile-001"
    assert rec["measured"]["weights_gib"] == 14.96


def test_missing_required_field_names_file_and_field(tmp_path):
    obj = simulated_profile()
    del obj["provenance"]
    path = write_raw(tmp_path / "sim-profile-001.json", obj)
    err = error_of(path)
    assert (err.path, err.field, err.reason) == (str(path), "provenance", "missing required field")
    assert str(err) == f"{path}: provenance: missing required field"


def test_missing_nested_required_field(tmp_path):
    obj = simulated_profile()
    del obj["provenance"]["evidence"]
    err = error_of(write_raw(tmp_path / "sim-profile-001.json", obj))
    assert err.field == "provenance.evidence"
    assert "missing required field" in err.reason


def test_negative_memory(tmp_path):
    err = error_of(write_raw(tmp_path / "sim-profile-001.json", simulated_profile(weights_gib=-1.5)))
    assert err.field == "measured.weights_gib"
    assert "negative memory" in err.reason


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_or_inf_memory(tmp_path, literal):
    # Python's json module accepts these non-standard literals; the loader must not.
    text = json.dumps(simulated_profile(weights_gib=1.0)).replace('"weights_gib": 1.0', f'"weights_gib": {literal}')
    assert literal in text
    err = error_of(write_raw(tmp_path / "sim-profile-001.json", text))
    assert err.field == "measured.weights_gib"
    assert "not a finite number" in err.reason


def test_nan_anywhere_is_rejected(tmp_path):
    text = json.dumps(simulated_profile()).replace('"memory_gib": 80.0', '"memory_gib": NaN')
    err = error_of(write_raw(tmp_path / "sim-profile-001.json", text))
    assert err.field == "gpu.memory_gib"


def test_unknown_unit_suffix(tmp_path):
    err = error_of(write_raw(tmp_path / "sim-profile-001.json", simulated_profile(weights_kb=3.0)))
    assert err.field == "measured.weights_kb"
    assert "unknown unit" in err.reason


def test_unknown_quantity(tmp_path):
    err = error_of(write_raw(tmp_path / "sim-profile-001.json", simulated_profile(wieghts_gib=3.0)))
    assert err.field == "measured.wieghts_gib"
    assert "unknown quantity" in err.reason


def test_unknown_framework(tmp_path):
    obj = simulated_profile()
    obj["framework"] = "vllm-ascend"
    err = error_of(write_raw(tmp_path / "sim-profile-001.json", obj))
    assert err.field == "framework"
    assert "unknown framework 'vllm-ascend'" in err.reason


def test_invalid_json_gives_line_and_column(tmp_path):
    path = write_raw(tmp_path / "sim-profile-001.json", '{\n  "schema_version": 1,\n  "profile_id": oops\n}\n')
    err = error_of(path)
    assert err.field == "json"
    assert "line 3 column 17" in err.reason
    assert str(err).startswith(f"{path}: json: invalid JSON")


def test_profile_id_must_match_file_name(tmp_path):
    err = error_of(write_raw(tmp_path / "other-name.json", simulated_profile()))
    assert err.field == "profile_id"
    assert "file name stem" in err.reason


def test_excluded_record_needs_a_reason(tmp_path):
    obj = simulated_profile()
    obj["use_in_fit"] = False
    err = error_of(write_raw(tmp_path / "sim-profile-001.json", obj))
    assert err.field == "exclude_reason"


def test_one_quantity_in_two_units_is_rejected(tmp_path):
    err = error_of(write_raw(tmp_path / "sim-profile-001.json", simulated_profile(weights_gib=1.0, weights_mib=1024.0)))
    assert "given twice" in err.reason


def test_empty_measured_only_when_excluded():
    obj = simulated_profile()
    obj["measured"] = {}
    with pytest.raises(ProfileError, match="measured: no measured value"):
        validate_profile(obj)
    obj["use_in_fit"], obj["exclude_reason"] = False, "no exact figure printed"
    validate_profile(obj)


def test_schema_type_errors_name_the_field():
    obj = simulated_profile()
    obj["parallel"]["tp"] = 0
    with pytest.raises(ProfileError) as info:
        validate_profile(obj)
    assert info.value.field == "parallel.tp"
    assert info.value.path == "<object>"


def test_schema_quantities_match_module():
    pattern = next(iter(_schema()["properties"]["measured"]["patternProperties"]))
    quantities = re.match(r"\^\((.*?)\)_", pattern).group(1).split("|")
    assert tuple(quantities) == MEMORY_QUANTITIES
    assert tuple(_schema()["properties"]["framework"]["enum"]) == FRAMEWORKS


def test_split_measured_name():
    assert split_measured_name("weights_non_torch_gib") == ("weights_non_torch", "gib")
    assert split_measured_name("peak_total_mb") == ("peak_total", "mb")
    with pytest.raises(ValueError, match="unknown unit"):
        split_measured_name("peak_total_kib")


# --------------------------------------------------------------------------- loading a folder

def _folder(tmp_path):
    write_profile(simulated_profile("sim-a"), tmp_path / "vllm")
    write_profile(simulated_profile("sim-b", weights_mib=2048.0), tmp_path / "vllm")
    bad = simulated_profile("sim-c", weights_gib=-2.0)
    write_raw(tmp_path / "vllm" / "sim-c.json", bad)
    (tmp_path / "zz").mkdir()
    write_raw(tmp_path / "zz" / "sim-a.json", simulated_profile("sim-a"))
    return tmp_path


def test_strict_raises_on_first_bad_file(tmp_path):
    root = _folder(tmp_path)
    with pytest.raises(ProfileError) as info:
        load_profiles(root, strict=True)
    assert info.value.path == str(root / "vllm" / "sim-c.json")
    assert info.value.field == "measured.weights_gib"


def test_non_strict_skips_and_reports(tmp_path):
    root = _folder(tmp_path)
    result = load_profiles(root, strict=False)
    assert [r.profile_id for r in result.records] == ["sim-a", "sim-b"]
    skipped = {p.name: reason for p, reason in result.skipped}
    assert set(skipped) == {"sim-c.json", "sim-a.json"}
    assert "negative memory" in skipped["sim-c.json"]
    dup_path, dup_reason = result.skipped[1]
    assert dup_path == root / "zz" / "sim-a.json"
    assert "duplicate profile id 'sim-a'" in dup_reason


def test_duplicate_ids_raise_when_strict(tmp_path):
    write_profile(simulated_profile("sim-a"), tmp_path / "a")
    write_profile(simulated_profile("sim-a"), tmp_path / "b")
    with pytest.raises(ProfileError, match="duplicate profile id"):
        load_profiles(tmp_path)


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_profiles(tmp_path / "nope")


# --------------------------------------------------------------------------- DataFrame

def test_frame_columns_follow_design(tmp_path):
    write_profile(simulated_profile(), tmp_path)
    frame = load_profiles(tmp_path).to_frame()
    assert list(FRAME_COLUMNS) == DESIGN_COLUMNS
    assert list(frame.columns) == DESIGN_COLUMNS + [f"{q}_gib" for q in MEMORY_QUANTITIES] + list(COUNT_FIELDS)
    row = frame.iloc[0]
    assert row["gpu_memory_utilization"] == 0.9 and row["enforce_eager"] == False  # noqa: E712
    assert row["use_in_fit"] and row["measured_scope"] == "per_gpu" and row["provenance_kind"] == "measured"
    assert row["kv_cache_tokens"] == 1000


@pytest.mark.parametrize("name,value,expected_gib", [
    ("weights_mib", 1024.0, 1.0),
    ("weights_mb", 1000.0, 1e9 / 2**30),
    ("weights_gb", 1.0, 1e9 / 2**30),
    ("weights_bytes", 2**31, 2.0),
    ("weights_gib", 14.96, 14.96),
    ("peak_total_mb", 29152.98, 29152.98e6 / 2**30),
])
def test_frame_converts_units_exactly(tmp_path, name, value, expected_gib):
    write_profile(simulated_profile(**{name: value}), tmp_path)
    frame = load_profiles(tmp_path).to_frame()
    assert frame.loc[0, name.rsplit("_", 1)[0] + "_gib"] == expected_gib


def test_missing_measurement_is_nan_not_zero(tmp_path):
    write_profile(simulated_profile(kv_cache_gib=0.0, weights_gib=None), tmp_path)
    frame = load_profiles(tmp_path).to_frame()
    assert frame.loc[0, "kv_cache_gib"] == 0.0  # a measured zero stays zero
    for q in MEMORY_QUANTITIES:
        if q != "kv_cache":
            assert math.isnan(frame.loc[0, f"{q}_gib"]), q
    assert frame["tp"].dtype.name == "Int64" and frame["batch_size"].isna().all()


# --------------------------------------------------------------------------- writing

def test_write_is_atomic_deterministic_and_validated(tmp_path):
    obj = simulated_profile()
    path = write_profile(obj, tmp_path)
    first = path.read_bytes()
    shuffled = dict(reversed(list(copy.deepcopy(obj).items())))
    assert write_profile(shuffled, tmp_path).read_bytes() == first  # key order fixed by the schema
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim-profile-001.json"]  # no temp files left
    assert first.endswith(b"\n") and json.loads(first)["profile_id"] == "sim-profile-001"
    bad = simulated_profile("sim-bad", weights_gib=float("nan"))
    with pytest.raises(ProfileError):
        write_profile(bad, tmp_path)
    assert not (tmp_path / "sim-bad.json").exists()


def test_error_and_log_folders_are_not_profiles(tmp_path):
    """A profiling study writes errors/*.json and logs/ beside its profiles: not profiles."""
    from fitting.data.profiles import load_profiles

    (tmp_path / "errors").mkdir()
    (tmp_path / "errors" / "scn-1.json").write_text('{"kind": "out_of_memory"}')
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "x.json").write_text("not json")
    assert load_profiles(tmp_path, strict=True).records == []


def test_compile_cache_is_cold_warm_or_unstated():
    """vLLM's torch.compile cache state decides whether compile temporaries are in the printed
    peak: only what a log can show is accepted, and a bad value names the file and field."""
    for state in ("cold", "warm", None):
        obj = simulated_profile()
        obj["engine_settings"] = {"compile_cache": state}
        validate_profile(obj)
    obj = simulated_profile()
    obj["engine_settings"] = {"compile_cache": "hot"}
    with pytest.raises(ProfileError, match=r"bad\.json: engine_settings\.compile_cache"):
        validate_profile(obj, "bad.json")
