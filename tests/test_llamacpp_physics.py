"""llama.cpp memory physics (:mod:`fitting.physics.llamacpp`) against its source and real logs.

* Worked examples from the cited source: ggml row sizes of the cache types, the KV tensor
  shapes of ``llama_kv_cache``, the iSWA cache size, ``n_ctx_seq``, the output buffer of
  ``output_reserve``, the ``-ngl`` layer placement of ``load_tensors``.
* Real logs: every llama.cpp profile (public records, harvested logs) and every fixture log
  whose architecture is known (hyperparameters printed in the log, or the model resolves in
  the registry) and whose cache geometry and types are known: KV within 0.5 % of the printed
  KV size; single-device full-offload starts: compute buffer within 10 %.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fitting.data.profiles import load_profiles
from fitting.data.registry import UnknownModelError, resolve_model
from fitting.ingest import parse_log
from fitting.physics.llamacpp import (
    GGUFHparams,
    compute_buffer_bytes,
    kv_cache_bytes,
    kv_caches,
    kv_cells_swa,
    layers_on_gpu,
    n_ctx_seq,
    output_buffer_bytes,
    row_size,
    weights_split_bytes,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "logs" / "llamacpp"
PUBLIC = ROOT / "profiles" / "public" / "llamacpp"
MIB = 2**20

LLAMA31_8B = GGUFHparams(n_layer=32, n_embd=4096, n_head=32, n_head_kv=8, n_embd_head_k=128, n_embd_head_v=128,
                         n_vocab=128256, n_ff=14336, arch="llama")


# --------------------------------------------------------------------------- worked examples from the source

def test_row_sizes_follow_ggml_block_layouts():
    # ggml-common.h: block_q8_0 = half + 32 int8 = 34 B; q4_0 = half + 16 B = 18 B; q4_1 = 2 halves + 16 = 20;
    # q5_0 = half + 4 + 16 = 22; q5_1 = 24; iq4_nl = 18
    assert row_size("f16", 1024) == 2048 and row_size("bf16", 1024) == 2048 and row_size("f32", 1024) == 4096
    assert row_size("q8_0", 1024) == 1024 // 32 * 34 == 1088
    assert row_size("q4_0", 1024) == 576 and row_size("iq4_nl", 1024) == 576
    assert row_size("q4_1", 1024) == 640 and row_size("q5_0", 1024) == 704 and row_size("q5_1", 1024) == 768
    with pytest.raises(ValueError):
        row_size("q8_0", 100)  # not whole blocks
    with pytest.raises(ValueError):
        row_size("q3_k", 256)


def test_kv_cache_tensor_shapes():
    # llama-kv-cache.cpp: per layer K (type_k, n_embd_k_gqa, kv_size, n_stream) + V likewise.
    # Llama-3.1-8B: n_embd_k_gqa = 8 * 128 = 1024; f16 at 4096 cells = 32 * 2 * 1024 * 2 B * 4096 = 512 MiB
    assert kv_cache_bytes(LLAMA31_8B, cells=4096) == 512 * MIB
    assert kv_cache_bytes(LLAMA31_8B, cells=4096, type_k="q8_0", type_v="q8_0") == 272 * MIB
    # per-sequence streams (kv_unified = false) multiply the cells
    assert kv_cache_bytes(LLAMA31_8B, cells=4096, n_stream=4) == 4 * 512 * MIB
    # mixed types: K iq4_nl, V f16 at 1024 cells = 18 MiB + 64 MiB (ik_llama log below prints exactly this)
    (cache,) = kv_caches(LLAMA31_8B, n_ctx=1024, type_k="iq4_nl", type_v="f16")
    assert (cache.k_bytes, cache.v_bytes) == (18 * MIB, 64 * MIB)


def test_n_ctx_seq_and_swa_cells():
    # llama-context.cpp: unified -> n_ctx; else GGML_PAD(n_ctx / n_seq_max, 256)
    assert n_ctx_seq(65536, 4, kv_unified=True) == 65536
    assert n_ctx_seq(10000, 4, kv_unified=False) == 2560
    # llama-kv-cache-iswa.cpp: GGML_PAD(min(kv_size, n_swa * (unified ? n_seq_max : 1) + n_ubatch), 256)
    assert kv_cells_swa(32768, 1024, n_ubatch=512) == 1536
    assert kv_cells_swa(32768, 4096, n_seq_max=4, n_ubatch=512, kv_unified=True) == 16896
    assert kv_cells_swa(1024, 4096, n_ubatch=512) == 1024
    assert kv_cells_swa(32768, 1024, swa_full=True) == 32768
    gemma = GGUFHparams(n_layer=6, n_embd=256, n_head=4, n_head_kv=1, n_embd_head_k=256, n_embd_head_v=256,
                        n_vocab=1000, n_swa=1024, swa_layers=(1, 1, 1, 1, 1, 0))
    full, swa = kv_caches(gemma, n_ctx=32768, n_ubatch=512)
    assert (full.name, full.cells, full.layers) == ("non-SWA", 32768, (5,))
    assert (swa.name, swa.cells, swa.layers) == ("SWA", 1536, (0, 1, 2, 3, 4))
    assert swa.bytes == 5 * 2 * 256 * 2 * 1536


def test_swa_pattern_from_printed_hparams():
    hp = GGUFHparams.from_printed({"n_layer": 12, "n_embd": 1152, "n_head": 4, "n_head_kv": 1, "n_embd_head_k": 256,
                                   "n_vocab": 262144, "n_swa": 512, "n_swa_pattern": 6})
    assert [hp.is_swa(il) for il in range(12)] == [True] * 5 + [False] + [True] * 5 + [False]


def test_output_buffer():
    # llama-context.cpp output_reserve: n_vocab * max(n_outputs, n_seq_max) floats
    assert round(output_buffer_bytes(32064, 1) / MIB, 2) == 0.12     # Phi-3 log: 0.12 MiB
    assert round(output_buffer_bytes(151936, 4) / MIB, 2) == 2.32    # Qwen3 MoE, 4 slots: 2.32 MiB
    assert round(output_buffer_bytes(128256, 2) / MIB, 2) == 0.98    # Llama-3.1, n_seq 2: 0.98 MiB
    assert output_buffer_bytes(10, 2, n_embd=5, embeddings=True) == (10 + 5) * 2 * 4


def test_layer_placement():
    # llama-model.cpp: i_gpu_start = max(n_layer + 1 - ngl, 0); output layer on GPU when ngl > n_layer
    assert layers_on_gpu(32, 33) == (0, 32, True)
    assert layers_on_gpu(32, 99) == (0, 32, True)
    assert layers_on_gpu(32, None) == (0, 32, True)
    assert layers_on_gpu(32, 32) == (1, 31, False)
    assert layers_on_gpu(32, 20) == (13, 19, False)
    assert layers_on_gpu(32, 0) == (32, 0, False)
    gpu, host = weights_split_bytes([10] * 4, input_bytes=7, output_bytes=5, n_gpu_layers=3)
    assert (gpu, host) == (20, 20 + 7 + 5)
    assert weights_split_bytes([10] * 4, input_bytes=7, output_bytes=5, n_gpu_layers=5) == (45, 7)


def test_compute_buffer_phases():
    # without flash attention the n_kv x n_tokens x n_head f32 scores dominate at long context
    cb = compute_buffer_bytes(LLAMA31_8B, n_kv=32768, n_ubatch=512, flash_attn=False)
    assert cb.phase == "attention" and cb.attention >= 32768 * 512 * 32 * 4
    # with flash attention the logits (n_vocab x n_ubatch f32) dominate
    cb = compute_buffer_bytes(LLAMA31_8B, n_kv=32768, n_ubatch=512, flash_attn=True)
    assert cb.phase == "output" and cb.output == (4096 + 128256) * 512 * 4
    # fewer outputs, smaller output phase
    assert compute_buffer_bytes(LLAMA31_8B, n_kv=4096, n_ubatch=512, flash_attn=True, n_outputs=1).output \
        == 4096 * 512 * 4 + 128256 * 4


def test_from_architecture_matches_printed_hparams():
    arch = resolve_model("Qwen/Qwen3-Coder-30B-A3B-Instruct").architecture
    hp = GGUFHparams.from_architecture(arch)
    assert (hp.n_layer, hp.head_kv(0), hp.n_embd_head_k, hp.n_vocab) == (48, 4, 128, 151936)
    assert hp.n_expert == 128 and hp.n_expert_used == 8 and hp.n_ff_exp == 768
    # MLA layout (DeepSeek-V2-Lite): K = kv_lora_rank + rope = 576, V = 512, one KV head
    mla = GGUFHparams.from_architecture(resolve_model("deepseek-ai/DeepSeek-V2-Lite").architecture)
    assert (mla.embd_k_gqa(0), mla.embd_v_gqa(0)) == (576, 512)


# --------------------------------------------------------------------------- against the logs

def _cases():
    """(label, profile) of every llama.cpp start we can check: fixtures and profiles/public/llamacpp."""
    out = []
    for path in sorted(FIXTURES.glob("*.log")):
        for i, p in enumerate(parse_log(path.read_bytes(), "llamacpp", source_name=path.name)):
            out.append((f"fixture {path.name}#{i}", p))
    if PUBLIC.is_dir():
        for rec in load_profiles(PUBLIC, strict=False).records:
            out.append((rec.path.name, rec.data))
    return out


def _hparams(p):
    printed = (p["model"].get("hparams_printed") or {})
    if {"n_layer", "n_embd", "n_head", "n_vocab"} <= set(printed):
        return GGUFHparams.from_printed(printed), "printed"
    model_id = p["model"].get("id")
    if model_id:
        try:
            return GGUFHparams.from_architecture(resolve_model(model_id).architecture), "registry"
        except (UnknownModelError, LookupError, ValueError):
            return None, None
    return None, None


_KV_TOTAL = re.compile(r"(?:KV self size|llama_kv_cache(?:_unified)?: size)\s*=\s*(\d+(?:\.\d+)?) MiB")


def _printed_kv_total(p):
    """The printed KV size of all caches (GPU and host parts): the 'size =' / 'KV self size' lines."""
    sizes = [float(x) for x in _KV_TOTAL.findall(p["provenance"]["evidence"])]
    return sum(sizes) if sizes else p["measured"].get("kv_cache_mib")


def _kv_check(p):
    """(predicted MiB, printed MiB) or None when the start cannot be checked."""
    if (p["model"].get("hparams_printed") or {}).get("n_lora_kv") or {"non_llamacpp_engine", "encoder_model"} & set(
            p.get("flags", ())):
        return None  # ik_llama.cpp's own MLA caches, ollama's Go engine: sized their own way
    off = re.search(r"offloaded (\d+)/(\d+) layers", (p.get("provenance") or {}).get("evidence") or "")
    if off and int(off.group(1)) < int(off.group(2)):
        return None  # partial offload: the GPU's KV buffer holds the offloaded layers only
    printed = _printed_kv_total(p) if p["measured"].get("kv_cache_mib") is not None else None
    if printed is None or p.get("measured_scope") == "sum_over_gpus" and not p.get("engine_settings", {}).get(
            "kv_cells"):
        return None
    hp, _ = _hparams(p)
    es = p.get("engine_settings") or {}
    type_k = es.get("type_k") or (p.get("precision") or {}).get("kv_cache_dtype")
    type_v = es.get("type_v") or type_k
    if hp is None or not type_k or type_k.lower() not in ("f16", "bf16", "f32", "q8_0", "q4_0", "q4_1", "q5_0",
                                                           "q5_1", "iq4_nl"):
        return None
    if es.get("kv_cells"):  # geometry printed by the KV line(s)
        total = 0
        for cells, layers, stream in ((es["kv_cells"], es.get("kv_layers"), es.get("kv_n_stream") or 1),
                                      (es.get("kv_cells_swa"), es.get("kv_layers_swa"), es.get("kv_n_stream") or 1)):
            if not cells:
                continue
            swa = cells == es.get("kv_cells_swa") and layers == es.get("kv_layers_swa")
            ids = [il for il in range(hp.n_layer) if hp.is_swa(il) == swa] if hp.swa_layers else list(range(hp.n_layer))
            if layers is not None and len(ids) != layers:
                sizes = {hp.embd_k_gqa(il) + hp.embd_v_gqa(il) for il in range(hp.n_layer)}
                if len(sizes) != 1:
                    return None
                ids = list(range(layers))
            total += kv_cache_bytes(hp, cells=cells, type_k=type_k, type_v=type_v, n_stream=stream, layers=ids)
        return total / MIB, printed
    n_ctx = (p.get("workload") or {}).get("context_len")
    if not n_ctx or hp.swa_layers:
        return None
    caches = kv_caches(hp, n_ctx=n_ctx, type_k=type_k, type_v=type_v, n_seq_max=es.get("n_seq_max") or 1,
                       kv_unified=es.get("kv_unified", True) is not False)
    return sum(c.bytes for c in caches) / MIB, printed


def test_kv_physics_matches_printed_kv_size():
    checked, errors = [], []
    for label, p in _cases():
        result = _kv_check(p)
        if result is None:
            continue
        predicted, printed = result
        err = (predicted - printed) / printed
        checked.append((label, predicted, printed, err))
        if abs(err) > 0.005:
            errors.append(f"{label}: predicted {predicted:.2f} MiB, printed {printed} MiB ({100 * err:+.2f} %)")
    assert len(checked) >= 5, checked
    assert not errors, "\n".join(errors)


def _compute_check(p):
    if "encoder_model" in p.get("flags", ()):
        return None  # BERT-style embedding/reranker graphs: no output logits, not the decoder physics
    es = p.get("engine_settings") or {}
    printed = p["measured"].get("compute_buffer_mib")
    hp, _ = _hparams(p)
    if printed is None or hp is None or p.get("measured_scope") == "sum_over_gpus":
        return None
    n_ubatch, fa = es.get("n_ubatch"), str(es.get("flash_attn")).lower()
    n_kv = es.get("kv_cells") or (p.get("workload") or {}).get("context_len")
    if not n_ubatch or not n_kv or fa not in ("0", "1", "enabled", "disabled", "true", "false"):
        return None
    if es.get("n_gpu_layers") is not None and es.get("n_layers_total") and es["n_gpu_layers"] < es["n_layers_total"]:
        return None  # partial offload: the GPU graph holds part of the layers
    cb = compute_buffer_bytes(hp, n_kv=n_kv, n_ubatch=n_ubatch, flash_attn=fa in ("1", "enabled", "true"),
                              n_kv_swa=es.get("kv_cells_swa"))
    return cb.bytes / MIB, printed


#: Printed compute buffers the physics does not reproduce within 10%, each with what is known.
#: They stay in the data (and in the fit, which carries the error); the test fails when one of
#: them moves inside 10% (remove it here) or further away.
KNOWN_COMPUTE_MISSES = {
}


def test_compute_buffer_physics_within_ten_percent():
    checked, errors = [], []
    for label, p in _cases():
        result = _compute_check(p)
        if result is None:
            continue
        predicted, printed = result
        err = (predicted - printed) / printed
        checked.append((label, round(100 * err, 2)))
        if label in KNOWN_COMPUTE_MISSES:
            expected = KNOWN_COMPUTE_MISSES[label][0]
            if abs(err) <= 0.10 or abs(err - expected) > 0.02:
                errors.append(f"{label}: known miss moved: {100 * err:+.2f} % (documented {100 * expected:+.0f} %)")
            continue
        if abs(err) > 0.10:
            errors.append(f"{label}: predicted {predicted:.2f} MiB, printed {printed} MiB ({100 * err:+.2f} %)")
    assert len(checked) >= 3, checked
    assert all(label in dict(checked) for label in KNOWN_COMPUTE_MISSES), checked
    # GLM4 (GLM-Z1-32B, build 5274): 353 MiB printed = the output phase plus the split-SwiGLU hole
    assert dict(checked)["llamacpp-thudm-glm-z1-32b-0414-c95d9f3361.json"] == pytest.approx(0.0, abs=1.0)
    assert not errors, "\n".join(errors)


def test_fit_features_use_each_profiles_compute_buffer_settings():
    """The llama.cpp fit's activation feature is the compute-buffer physics at the profile's own
    n_ubatch and flash attention (engine settings, notes, or the -fa auto default from
    September 2025): the printed compute buffers of pythia-2.8b (n_ubatch 512, FA off: 162 MiB),
    Phi-3-mini (n_ubatch 256: 150 MiB) and Qwen3-Coder-30B-A3B (FA auto, 64k context:
    300.75 MiB) are reproduced within 1%. Known miss: the Qwen2.5-7B run with 4 parallel
    slots and a q8_0 KV cache prints 148 MiB against 304 MiB."""
    from pathlib import Path

    from fitting.data.profiles import load_profiles
    from fitting.overhead.observations import build_observations

    frame = load_profiles(Path(__file__).resolve().parents[1] / "profiles").to_frame()
    obs = build_observations(frame, "llamacpp")
    t = obs.table.set_index("profile_id")
    measured = frame.set_index("profile_id")["compute_buffer_gib"]
    checked = 0
    for pid, row in t.iterrows():
        if row.model_id in ("EleutherAI/pythia-2.8b", "microsoft/Phi-3-mini-4k-instruct",
                            "Qwen/Qwen3-Coder-30B-A3B-Instruct") and row.response_form == "buffers":
            assert row.activations_gib == pytest.approx(measured[pid], rel=0.01), pid
            checked += 1
    assert checked >= 7


def test_the_estimate_keeps_the_token_embeddings_in_host_memory():
    """llama.cpp's input layer stays on the CPU (llama_model::load_tensors: dev_input is the
    CPU): the estimate's GPU weights are the printed CUDA0 model buffer (Qwen2.5-7B-Instruct
    Q4_K_M: 4168.09 MiB), not the whole file (4.36 GiB with token_embd); pythia-2.8b's host
    part is exactly its f16 embeddings (245.62 MiB printed as CPU_Mapped)."""
    from fitting.data.registry import resolve_model
    from fitting.overhead.specs import build_features
    from fitting.physics.memory import weight_bytes_per_gpu

    arch = resolve_model("Qwen/Qwen2.5-7B-Instruct").architecture
    f = build_features(arch, framework="llamacpp", quantization="Q4_K_M", input_len=4096)
    assert f["weights_gib"] * 1024 == pytest.approx(4168.09, abs=0.5)
    full = weight_bytes_per_gpu(arch, quantization="Q4_K_M") / MIB
    assert full - 4168.09 > 250  # the embeddings a vLLM-style count would add
    pythia = resolve_model("EleutherAI/pythia-2.8b").architecture
    host = (weight_bytes_per_gpu(pythia, dtype="float16", quantization="gguf:F16")
            - weight_bytes_per_gpu(pythia, dtype="float16", quantization="gguf:F16", embedding_on_gpu=False))
    assert host / MIB == pytest.approx(245.62, abs=0.05)
