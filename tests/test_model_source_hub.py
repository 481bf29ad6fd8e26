"""The Hugging Face Hub path, without the network.

Two ways, both exercising the real ``huggingface_hub`` calls (``hf_hub_download``,
``get_safetensors_metadata``, their caching and offline mode):

* a **fake Hub**: ``huggingface_hub``'s HTTP client is given a mock transport
  (``set_client_factory``) that answers HEAD / GET / range requests the way the Hub does,
  from files kept in the test (real config.json and index files from ``tests/data/hub``);
  only the transport is replaced;
* a **fake cache**: a ``huggingface_hub`` cache directory laid out by the test
  (``models--org--name/refs/main``, ``snapshots/<commit>/...``), read with the network off.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import json
import re
import struct
from pathlib import Path

import pytest

hf = pytest.importorskip("huggingface_hub")

from fitting.data.model_source import (
    SOURCE_HUB,
    SOURCE_HUB_CACHE,
    SOURCE_REGISTRY,
    WEIGHT_TOLERANCE,
    GatedModelError,
    ModelNotFoundError,
    load_hub,
    resolve_any,
)
from fitting.data import model_source
from fitting.data.registry import UnknownModelError
from fitting.physics.architecture import Architecture
from fitting.physics.parameters import tensor_inventory

HUB = Path(__file__).resolve().parent / "data" / "hub"
COMMIT = "0123456789abcdef0123456789abcdef01234567"

if not hasattr(hf, "set_client_factory"):  # pragma: no cover - huggingface_hub < 1.0 (requests backend)
    pytest.skip("this huggingface_hub has no set_client_factory transport hook", allow_module_level=True)


def _data(name: str, file: str) -> bytes:
    p = HUB / name / file
    return p.read_bytes() if p.exists() else gzip.decompress(p.with_name(file + ".gz").read_bytes())


def _derived_header(arch: Architecture) -> dict:
    """A safetensors header DERIVED from the physics inventory (labelled: it tests the Hub
    plumbing, not the physics). Only headers are served; the tensor data is never requested."""
    header = {}
    for spec in tensor_inventory(arch):
        shape = [spec.rows, spec.cols] if spec.cols > 1 else [spec.rows]
        for layer in (spec.layers or [None]):
            for e in range(spec.copies):
                name = spec.name.replace("experts.", f"experts.{e}.") if spec.copies > 1 else spec.name
                full = (f"model.layers.{layer}.{name}" if layer is not None else
                        (name if spec.role == "lm_head" else f"model.{name}"))
                header[full] = {"dtype": "BF16", "shape": shape}
    return header


def _safetensors(header: dict) -> bytes:
    """Header part of a safetensors file (8-byte little-endian length + JSON, offsets filled in)."""
    offset, out = 0, {}
    for name, info in header.items():
        n = 2
        for d in info["shape"]:
            n *= d
        out[name] = {**info, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(out).encode()
    return struct.pack("<Q", len(raw)) + raw


class FakeHub:
    """Answers huggingface_hub's requests like huggingface.co: resolve URLs (HEAD, GET, Range)."""

    def __init__(self):
        self.repos: dict[str, dict[str, bytes]] = {}
        self.gated: set[str] = set()
        self.requests: list[tuple[str, str]] = []

    def handler(self, request):
        httpx = importlib.import_module(type(request).__module__.split(".")[0])
        url = str(request.url)
        self.requests.append((request.method, url))
        m = re.match(r"https://huggingface\.co/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", url)
        if not m:
            return httpx.Response(404, headers={"X-Error-Code": "RepoNotFound"})
        repo, _rev, fname = m.groups()
        if repo in self.gated:
            return httpx.Response(403, headers={"X-Error-Code": "GatedRepo"})
        files = self.repos.get(repo)
        if files is None:
            return httpx.Response(404, headers={"X-Error-Code": "RepoNotFound"})
        if fname not in files:
            return httpx.Response(404, headers={"X-Error-Code": "EntryNotFound"})
        body = files[fname]
        head = {"X-Repo-Commit": COMMIT, "ETag": '"' + hashlib.sha1(body).hexdigest() + '"',
                "Content-Length": str(len(body))}
        if request.method == "HEAD":
            return httpx.Response(200, headers=head)
        rng = request.headers.get("range")
        if rng:
            a, b = (int(x) for x in re.match(r"bytes=(\d+)-(\d+)", rng).groups())
            part = body[a:b + 1]
            return httpx.Response(206, headers={**head, "Content-Length": str(len(part))}, content=part)
        return httpx.Response(200, headers=head, content=body)


@pytest.fixture()
def fake_hub(monkeypatch, tmp_path):
    """Install the fake Hub as huggingface_hub's transport; HF cache and metadata cache in tmp."""
    hub = FakeHub()
    httpx = importlib.import_module(type(hf.get_session()).__module__.split(".")[0])
    monkeypatch.setenv("LLM_SIZER_CACHE", str(tmp_path / "sizer-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    # the name lookup of huggingface.co is part of the transport the fake Hub replaces
    monkeypatch.setattr(model_source, "hub_unreachable_reason", lambda: None)
    hf.set_client_factory(lambda: httpx.Client(transport=httpx.MockTransport(hub.handler), follow_redirects=True))
    yield hub
    default = getattr(importlib.import_module("huggingface_hub.utils._http"), "default_client_factory", None)
    hf.set_client_factory(default or (lambda: httpx.Client(follow_redirects=True, timeout=None)))


def test_real_config_and_index_through_the_hub_calls(fake_hub, tmp_path):
    """WizardLM-2-8x22B's real config.json and index served by the fake Hub: hf_hub_download
    fetches the config, get_safetensors_metadata finds the shards unreadable (not served), the
    index gives the real total_size, and the physics agrees with it."""
    repo = "alpindale/WizardLM-2-8x22B"
    fake_hub.repos[repo] = {"config.json": _data("wizardlm-2-8x22b", "config.json"),
                            "model.safetensors.index.json": _data("wizardlm-2-8x22b", "model.safetensors.index.json")}
    cache = tmp_path / "hf-cache"
    r = resolve_any(repo, cache_dir=cache)
    assert r.source == SOURCE_HUB and r.revision == COMMIT
    assert r.safetensors.stated_total_size == 281_241_268_224
    assert r.weight_check.comparable and abs(r.weight_check.rel_error) <= WEIGHT_TOLERANCE
    assert any("index's total_size is used" in w for w in r.warnings)
    assert ("HEAD", f"https://huggingface.co/{repo}/resolve/main/config.json") in fake_hub.requests
    assert any("answered by the Hugging Face Hub" in line for line in r.describe())
    # a second call works offline, from huggingface_hub's cache: no request is made
    before = len(fake_hub.requests)
    again = resolve_any(repo, cache_dir=cache, offline=True)
    assert len(fake_hub.requests) == before
    assert again.source == SOURCE_HUB_CACHE and again.entry.architecture == r.entry.architecture
    assert again.weight_check.metadata_bytes == r.weight_check.metadata_bytes


def test_headers_from_get_safetensors_metadata_and_the_cached_summary(fake_hub, tmp_path):
    """Sharded repo with (DERIVED) safetensors headers: get_safetensors_metadata reads every
    shard header with range requests; the vision tower is counted from it; offline, the
    cached summary answers."""
    cfg = json.loads(_data("qwen3-1.7b", "config.json"))
    cfg["vision_config"] = {"depth": 1}  # a multimodal wrapper: the tower is counted from the headers
    arch = Architecture.from_hf_config(cfg)
    text = _derived_header(arch)
    vision = {"visual.blocks.0.attn.qkv.weight": {"dtype": "BF16", "shape": [3840, 1280]},
              "visual.merger.mlp.0.weight": {"dtype": "BF16", "shape": [5120, 5120]}}
    shard1, shard2 = _safetensors(text), _safetensors(vision)
    index = {"metadata": {"total_size": 0},
             "weight_map": {**{n: "model-00001-of-00002.safetensors" for n in text},
                            **{n: "model-00002-of-00002.safetensors" for n in vision}}}
    repo = "org/derived-vl"
    fake_hub.repos[repo] = {"config.json": json.dumps(cfg).encode(),
                            "model.safetensors.index.json": json.dumps(index).encode(),
                            "model-00001-of-00002.safetensors": shard1, "model-00002-of-00002.safetensors": shard2}
    r = load_hub(repo, cache_dir=tmp_path / "hf")
    assert r.safetensors.has_shapes and r.safetensors.n_files == 2
    assert r.unmodelled_bytes == {"vision": (3840 * 1280 + 5120 * 5120) * 2}
    w = r.weights_per_gpu(tp=1)
    assert w["total_gib"] - w["language_model_gib"] == pytest.approx(r.unmodelled_bytes["vision"] / 2**30)
    assert r.weight_check.comparable and r.weight_check.rel_error == 0.0  # derived headers: equal by construction
    ranges = [u for m, u in fake_hub.requests if m == "GET" and u.endswith(".safetensors")]
    assert len(ranges) == 2  # one header read per shard, no weights
    before = len(fake_hub.requests)
    off = load_hub(repo, cache_dir=tmp_path / "hf", offline=True)
    assert len(fake_hub.requests) == before and off.safetensors.has_shapes and off.unmodelled_bytes == r.unmodelled_bytes


def test_quantized_derivative_from_its_own_config(fake_hub, tmp_path):
    repo = "OpenGVLab/InternVL3-38B-AWQ"
    fake_hub.repos[repo] = {"config.json": _data("internvl3-38b-awq", "config.json")}
    r = load_hub(repo, cache_dir=tmp_path)
    assert r.entry.native_quantization == "awq-int4-g128" and r.quantization.method == "awq"
    assert r.towers == ("vision_config",) and any("vision_config: not modelled" in w for w in r.warnings)
    assert any("no safetensors" in w or "none in the repo" in w for w in r.warnings)


def test_gated_repo_without_token_says_so(fake_hub, tmp_path):
    fake_hub.gated.add("meta-llama/Secret-8B")
    with pytest.raises(GatedModelError, match="gated repo.*hf auth login.*HF_TOKEN"):
        resolve_any("meta-llama/Secret-8B", cache_dir=tmp_path)


def test_unknown_repo_and_offline_miss_say_how_to_pass_a_config(fake_hub, tmp_path):
    with pytest.raises(ModelNotFoundError, match="the Hub has no repo") as err:
        resolve_any("nobody/nothing-7B", cache_dir=tmp_path)
    assert isinstance(err.value, UnknownModelError) and "local folder or config.json" in str(err.value)
    before = len(fake_hub.requests)
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache.*offline"):
        resolve_any("nobody/nothing-7B", cache_dir=tmp_path, offline=True)
    assert len(fake_hub.requests) == before  # --offline forbids the network


def test_registry_answers_before_the_hub(fake_hub):
    r = resolve_any("Qwen/Qwen2-VL-2B-Instruct-AWQ")
    assert r.source == SOURCE_REGISTRY and not fake_hub.requests


def test_a_cache_directory_laid_out_by_hand_answers_offline(tmp_path, monkeypatch):
    """huggingface_hub's cache layout, written by the test; HF_HUB_OFFLINE=1 and no transport."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LLM_SIZER_CACHE", str(tmp_path / "sizer"))
    repo_dir = tmp_path / "models--Qwen--Qwen3.5-REAP-test"
    snap = repo_dir / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(COMMIT)
    (snap / "config.json").write_bytes(_data("qwen3.5-18b-reap-a3b", "config.json"))
    (snap / "model.safetensors.index.json").write_bytes(_data("qwen3.5-18b-reap-a3b", "model.safetensors.index.json"))
    r = resolve_any("Qwen/Qwen3.5-REAP-test", cache_dir=tmp_path)
    assert r.source == SOURCE_HUB_CACHE and r.revision == COMMIT
    assert r.entry.architecture.is_hybrid
    assert r.weight_check.comparable and abs(r.weight_check.rel_error) <= WEIGHT_TOLERANCE
    assert any("hybrid stack" in w for w in r.warnings)


def test_an_unreachable_hub_fails_fast_or_answers_from_the_cache(tmp_path, monkeypatch):
    """No network (the name lookup fails): no request, no retries; the cache still answers."""
    import socket

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for v in model_source._PROXY_VARS:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("LLM_SIZER_CACHE", str(tmp_path / "sizer"))

    def no_dns(*a, **k):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    assert "name lookup of huggingface.co failed" in model_source.hub_unreachable_reason()
    with pytest.raises(ModelNotFoundError, match="could not be reached.*not in the local Hugging Face cache"):
        resolve_any("nobody/nothing-7B", cache_dir=tmp_path)
    repo_dir = tmp_path / "models--someone--cached-model"
    snap = repo_dir / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(COMMIT)
    (snap / "config.json").write_bytes(_data("qwen3-1.7b", "config.json"))
    r = resolve_any("someone/cached-model", cache_dir=tmp_path)
    assert r.source == SOURCE_HUB_CACHE and r.entry.architecture.num_layers == 28
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")  # a proxy resolves names itself
    assert model_source.hub_unreachable_reason() is None
