"""GPU memory table (fitting.data.gpus): names, units, and the usable figures against the logs."""

import json
from pathlib import Path

import pytest

from fitting.data.gpus import GPUS, gpu_info

PUBLIC_LOGS = Path(__file__).parents[2] / "shared" / "data" / "public-logs"
GIB = 2**30


@pytest.mark.parametrize("name, canonical", [
    ("H100", "H100-80GB"), ("NVIDIA H100 80GB HBM3", "H100-80GB"), ("a100-80gb", "A100-80GB"),
    ("A100 40GB", "A100-40GB"), ("NVIDIA GeForce RTX 4090", "RTX-4090"), ("l4", "L4"), ("L40S", "L40S"),
    ("mi300x", "MI300X"), ("H200", "H200"),
])
def test_lookup(name, canonical):
    assert gpu_info(name).name == canonical


@pytest.mark.parametrize("name, needle", [("A100", "ambiguous"), ("Z9000", "unknown GPU"), ("", "unknown GPU")])
def test_lookup_errors(name, needle):
    with pytest.raises(ValueError, match=needle):
        gpu_info(name)


def test_usable_below_nominal_and_sources_named():
    for g in GPUS.values():
        assert 0 < g.usable_gib < g.nominal_gib, g.name
        assert g.usable_source.startswith("estimate") or "http" in g.usable_source or "public-logs" in \
            g.usable_source or "file ref" in g.usable_source, g.name


def test_vendor_gb_labels_are_binary():
    """Where a log shows the usable memory, it exceeds label x 1e9 bytes: the label is GiB."""
    for name in ("H100-80GB", "A100-40GB", "A100-80GB", "H200", "RTX-4090", "RTX-3090"):
        g = gpu_info(name)
        assert not g.usable_is_estimate
        assert g.usable_gib * GIB > g.nominal_gib * 1e9, name


@pytest.mark.skipif(not PUBLIC_LOGS.is_dir(), reason="shared/data/public-logs not available")
def test_observed_usable_figures_appear_in_the_public_logs():
    seen = []
    for f in PUBLIC_LOGS.glob("*.jsonl"):
        for line in f.read_text().splitlines():
            v = json.loads(line).get("gpu_total_gib")
            if v is not None:
                seen.append(float(v))
    # and the device totals the harvested public profiles record (printed by the engine or torch)
    for f in (Path(__file__).resolve().parents[1] / "profiles" / "public").glob("*/*.json"):
        v = (json.loads(f.read_text()).get("gpu") or {}).get("memory_gib")
        if v is not None:
            seen.append(float(v))
    for g in GPUS.values():
        if not g.usable_is_estimate:
            assert any(abs(g.usable_gib - v) <= 0.01 for v in seen), g.name
