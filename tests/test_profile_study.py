"""Study files: validation, expansion to scenarios, stable ids, sharding."""

import itertools
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from fitting.profile.study import (
    Scenario, StudyError, load_study, parse_shard, parse_study, shard, with_backend,
)

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted((ROOT / "studies").glob("*.yaml"))
SEVEN = {"batch-scaling", "sequence-length", "quantization", "multi-gpu", "moe", "edge-cases", "framework-comparison"}


def _study(**grid):
    return {"name": "t", "grid": grid}


# --------------------------------------------------------------------------- expansion


def test_cross_product_of_list_fields():
    data = {"name": "t", "defaults": {"output_len": 64, "dtype": ["bfloat16", "float16"]},
            "grid": {"model": ["a/x", "b/y", "c/z"], "batch_size": [1, 2, 4, 8], "input_len": 128}}
    study = parse_study(data)
    assert len(study.scenarios) == 3 * 4 * 2
    combos = {(s.model, s.batch_size, s.dtype) for s in study.scenarios}
    assert combos == set(itertools.product(["a/x", "b/y", "c/z"], [1, 2, 4, 8], ["bfloat16", "float16"]))
    assert all(s.input_len == 128 and s.output_len == 64 for s in study.scenarios)
    assert len({s.id for s in study.scenarios}) == len(study.scenarios)


def test_blocks_are_a_union_and_duplicates_collapse():
    data = {"name": "t", "grid": [{"model": "a/x", "batch_size": [1, 2]}, {"model": "a/x", "batch_size": [2, 4]},
                                  {"model": "b/y", "tp": [1, 2]}]}
    study = parse_study(data)
    assert [(s.model, s.batch_size, s.tp) for s in study.scenarios] == [
        ("a/x", 1, 1), ("a/x", 2, 1), ("a/x", 4, 1), ("b/y", 1, 1), ("b/y", 1, 2)]


def test_block_overrides_defaults():
    study = parse_study({"name": "t", "defaults": {"batch_size": [1, 2, 3]}, "grid": [{"model": "a/x"},
                                                                                      {"model": "b/y", "batch_size": 9}]})
    assert [s.batch_size for s in study.scenarios] == [1, 2, 3, 9]


def test_study_backend_applies_to_scenarios_without_one():
    study = parse_study({"name": "t", "backend": "transformers",
                         "grid": [{"model": "a/x"}, {"model": "a/x", "backend": "vllm"}]})
    assert [s.backend for s in study.scenarios] == ["transformers", "vllm"]


# --------------------------------------------------------------------------- ids


def test_id_is_independent_of_key_order():
    data = {"name": "t", "defaults": {"output_len": 32, "dtype": "float16"},
            "grid": {"model": ["a/x", "b/y"], "batch_size": [1, 8], "kv_cache_dtype": ["auto", "fp8"], "tp": [1, 2]}}
    ids = sorted(s.id for s in parse_study(data).scenarios)
    rng = random.Random(0)
    for _ in range(5):
        grid = list(data["grid"].items())
        rng.shuffle(grid)
        shuffled = {"grid": dict(grid), "defaults": dict(reversed(list(data["defaults"].items()))), "name": "t"}
        assert sorted(s.id for s in parse_study(shuffled).scenarios) == ids


def test_explicit_default_gives_the_same_id():
    assert Scenario(model="a/x").id == Scenario(model="a/x", tp=1, kv_cache_dtype="auto", quantization=None).id
    assert Scenario(model="a/x", gpu_memory_utilization=0.9).id == Scenario(model="a/x").id


def test_every_field_change_changes_the_id():
    base = Scenario(model="a/x")
    changes = {"model": "a/y", "backend": "transformers", "batch_size": 2, "input_len": 7, "output_len": 9, "tp": 2,
               "dtype": "float16", "kv_cache_dtype": "fp8", "quantization": "awq", "max_model_len": 4096,
               "gpu_memory_utilization": 0.8, "enforce_eager": True, "load_format": "dummy",
               "trust_remote_code": True}
    assert set(changes) == set(base.to_dict())  # every field is covered
    ids = {Scenario(**{**base.to_dict(), k: v}).id for k, v in changes.items()}
    assert len(ids) == len(changes) and base.id not in ids


def test_id_is_stable_across_processes():
    """The id is a content hash (SHA-256), not Python's salted hash: another interpreter agrees."""
    sc = Scenario(model="meta-llama/Llama-3.2-1B", batch_size=8, kv_cache_dtype="fp8")
    code = ("from fitting.profile.study import Scenario; "
            "print(Scenario(model='meta-llama/Llama-3.2-1B', batch_size=8, kv_cache_dtype='fp8').id)")
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == sc.id


def test_id_is_a_valid_profile_id_and_file_name():
    import re

    pattern = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,200}$")  # profile-v1.schema.json profile_id
    for path in STUDIES:
        for sc in load_study(path).scenarios:
            assert pattern.match(sc.id), sc.id


# --------------------------------------------------------------------------- validation


BAD = [
    ({"name": "t", "grid": {"model": "a/x", "batch_size": 0}}, "grid.batch_size", "integer >= 1"),
    ({"name": "t", "grid": {"model": "a/x", "batch_size": [1, "8"]}}, "grid.batch_size[1]", "integer >= 1"),
    ({"name": "t", "grid": {"model": "a/x", "batch_size": True}}, "grid.batch_size", "integer >= 1"),
    ({"name": "t", "grid": [{"model": "a/x"}, {"model": "a/x", "dtype": "fp16"}]}, "grid[1].dtype", "one of"),
    ({"name": "t", "grid": {"model": "a/x", "kv_cache_dtype": "int4"}}, "grid.kv_cache_dtype", "one of"),
    ({"name": "t", "grid": {"model": "a/x", "quantization": "int3"}}, "grid.quantization", "one of"),
    ({"name": "t", "grid": {"model": "a/x", "gpu_memory_utilization": 1.5}}, "grid.gpu_memory_utilization", "(0, 1]"),
    ({"name": "t", "grid": {"model": "a/x", "enforce_eager": "yes"}}, "grid.enforce_eager", "true or false"),
    ({"name": "t", "grid": {"model": "a/x", "batchsize": 4}}, "grid.batchsize", "unknown scenario field"),
    ({"name": "t", "grid": {"model": "a/x", "batch_size": []}}, "grid.batch_size", "empty list"),
    ({"name": "t", "grid": {"batch_size": 4}}, "grid.model", "missing"),
    ({"name": "t", "grid": [{"model": "a/x"}, {"tp": 2}]}, "grid[1].model", "missing"),
    ({"name": "t", "grid": {"model": "a/x", "input_len": 100, "output_len": 100, "max_model_len": 150}},
     "grid.max_model_len", "input_len + output_len"),
    ({"name": "t", "defaults": {"tp": -1}, "grid": {"model": "a/x"}}, "defaults.tp", "integer >= 1"),
    ({"name": "t"}, "grid", "missing"),
    ({"name": "t", "grid": []}, "grid", "non-empty"),
    ({"name": "bad name!", "grid": {"model": "a/x"}}, "name", "letters"),
    ({"name": "t", "grid": {"model": "a/x"}, "timeout": 5}, "timeout", "unknown key"),
    ({"name": "t", "grid": {"model": "a/x"}, "timeout_s": -5}, "timeout_s", "positive"),
    ({"name": "t", "backend": "sglang", "grid": {"model": "a/x"}}, "backend", "one of"),
    ({"name": "t", "grid": {"model": {"id": "a/x"}}}, "grid.model", "mapping"),
]


@pytest.mark.parametrize("data,field,reason", BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_bad_fields_name_file_and_field(tmp_path, data, field, reason):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(StudyError) as err:
        load_study(path)
    assert err.value.field == field
    assert str(err.value).startswith(f"{path}: {field}: ")
    assert reason in err.value.reason


def test_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(StudyError, match="cannot read"):
        load_study(tmp_path / "missing.yaml")
    bad = tmp_path / "x.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(StudyError, match="not valid YAML"):
        load_study(bad)
    tagged = tmp_path / "tag.yaml"
    tagged.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(StudyError):  # safe_load refuses python tags
        load_study(tagged)


# --------------------------------------------------------------------------- the project's study files


def test_the_seven_studies_and_the_device_study_exist():
    names = {load_study(p).name for p in STUDIES}
    assert SEVEN <= names and "device-smoke" in names


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_study_file_expands(path):
    study = load_study(path)
    data = yaml.safe_load(path.read_text())
    blocks = data["grid"] if isinstance(data["grid"], list) else [data["grid"]]
    upper = 0
    for block in blocks:  # expansion size = product of the list lengths, summed over blocks (minus duplicates)
        merged = {**(data.get("defaults") or {}), **block}
        n = 1
        for value in merged.values():
            n *= len(value) if isinstance(value, list) else 1
        upper += n
    assert 0 < len(study.scenarios) <= upper
    assert len({s.id for s in study.scenarios}) == len(study.scenarios)
    if study.timeout_s is not None:
        assert study.timeout_s > 0


def test_studies_cover_the_issue_ranges():
    by_name = {load_study(p).name: load_study(p) for p in STUDIES}
    batch = by_name["batch-scaling"].scenarios
    assert {s.batch_size for s in batch} >= {1, 128}
    seq = by_name["sequence-length"].scenarios
    assert min(s.context_len for s in seq) == 256 and max(s.context_len for s in seq) == 8192
    assert {s.kv_cache_dtype for s in seq} == {"auto", "fp8"}
    assert {s.tp for s in by_name["multi-gpu"].scenarios} == {1, 2, 4, 8}
    edge = by_name["edge-cases"].scenarios
    assert max(s.batch_size for s in edge) == 512 and max(s.context_len for s in edge) == 32768
    assert {s.backend for s in by_name["framework-comparison"].scenarios} == {"vllm", "transformers"}
    smoke = by_name["device-smoke"].scenarios
    assert {s.backend for s in smoke} == {"transformers"} and len({s.model for s in smoke}) in range(6, 11)
    assert {s.batch_size for s in smoke} >= {1, 64}
    assert min(s.input_len for s in smoke) == 256 and max(s.input_len for s in smoke) == 8192


# --------------------------------------------------------------------------- backend selection and shards


def test_with_backend():
    study = parse_study({"name": "t", "grid": {"model": ["a/x", "b/y"], "backend": ["vllm", "transformers"]}})
    assert {s.backend for s in with_backend(study.scenarios, "transformers")} == {"transformers"}
    assert len(with_backend(study.scenarios, "vllm")) == 2
    assert with_backend(study.scenarios, None) == list(study.scenarios)
    plain = parse_study({"name": "t", "grid": {"model": ["a/x", "b/y"]}}).scenarios
    moved = with_backend(plain, "transformers")
    assert [s.backend for s in moved] == ["transformers"] * 2 and {s.id for s in moved}.isdisjoint({s.id for s in plain})
    with pytest.raises(ValueError):
        with_backend(plain, "sglang")


def test_parse_shard():
    assert parse_shard("2/8") == (2, 8) and parse_shard(" 1 / 1 ") == (1, 1)
    for bad in ("0/4", "5/4", "a/b", "3", "", "1/0"):
        with pytest.raises(ValueError, match="K/N"):
            parse_shard(bad)


@settings(max_examples=60, deadline=None)
@given(n_scen=st.integers(0, 40), n=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_shards_partition_the_study(n_scen, n, seed):
    scenarios = [Scenario(model=f"m/{i % 5}", batch_size=1 + i) for i in range(n_scen)]
    parts = [shard(scenarios, k, n) for k in range(1, n + 1)]
    ids = [s.id for part in parts for s in part]
    assert sorted(ids) == sorted(s.id for s in scenarios)  # union is the study, no overlap
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    shuffled = list(scenarios)
    random.Random(seed).shuffle(shuffled)  # independent of file order
    assert [{s.id for s in shard(shuffled, k, n)} for k in range(1, n + 1)] == [{s.id for s in p} for p in parts]


def test_shards_of_a_real_study():
    study = load_study(ROOT / "studies" / "sequence_length.yaml")
    parts = [shard(study.scenarios, k, 7) for k in range(1, 8)]
    assert sum(len(p) for p in parts) == len(study.scenarios)
    assert set().union(*({s.id for s in p} for p in parts)) == {s.id for s in study.scenarios}
    with pytest.raises(ValueError):
        shard(study.scenarios, 0, 7)


def test_scenario_json_round_trip():
    sc = Scenario(model="a/x", batch_size=3, quantization="awq", trust_remote_code=True)
    assert Scenario(**json.loads(json.dumps(sc.to_dict()))) == sc
