"""Physics against what vLLM itself reported (public logs converted to profiles).

Reads ``profiles/public/vllm/*.json`` with plain ``json`` (schema v1 fields ``model.id``,
``model.architecture``, ``parallel.tp/pp``, ``precision.dtype/kv_cache_dtype/quantization``,
``measured.kv_cache_<unit>``, ``measured.kv_cache_tokens``, ``measured.weights_<unit>``).

* KV: vLLM prints the pool per GPU (``kv_cache_gib``) and the engine-wide token capacity
  (``kv_cache_tokens``); with TP every rank holds its share of the KV heads for the same
  tokens, so ``kv_cache_gib * 2**30 / kv_cache_tokens`` is the bytes per token *per GPU*,
  which must match :func:`kv_bytes_per_token` within 2%. Models with full and sliding
  layers under V1's hybrid manager (0.9.2+) print a token count of their layer groups
  instead: the printed pool turned into tokens by :func:`fitting.physics.vllm.vllm_pool_tokens`
  must match the printed count within 2% (records without max_model_len and
  max_num_batched_tokens are counted as not checkable).
* Weights: for unquantized records, :func:`weight_bytes_per_gpu` within 3% of
  ``weights_gib`` (per GPU).

Records whose model is not in the registry (after aliases) and has no inline architecture
are not checkable and are counted, not failed. A checkable record that disagrees must be
listed below with its reason; an unlisted disagreement fails, and a listed record that
agrees fails too (the table must stay true).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fitting.physics.architecture import Architecture, ArchitectureError
from fitting.physics.memory import kv_bytes_per_token, weight_bytes_per_gpu, weight_bytes_per_stage
from fitting.physics.vllm import vllm_hybrid_kv_layout, vllm_pool_tokens
from fitting.physics.quantization import normalize_dtype
from fitting.data.registry import IncompleteModelError, UnknownModelError, load_registry
from fitting.units import UNIT_BYTES

PROFILE_DIR = Path(__file__).resolve().parents[1] / "profiles" / "public" / "vllm"
KV_TOLERANCE = 0.02
WEIGHT_TOLERANCE = 0.03

#: Checkable KV records that disagree: match on model name (substring of model.id or
#: name_as_given, case-insensitive) and the measured kv_cache_gib.
KV_EXCEPTIONS: list[dict] = [
    {"model": "qwen2-vl-2b-instruct-awq", "kv_cache_gib": 0.07,
     "reason": "kv_cache_gib printed to 0.01 GiB: 0.065-0.075 GiB over 2,544 tokens is 27,400-31,700 B/token; ours "
               "28,672 (28 layers x 2 x 2 KV heads x 128 x 2 B), the author's own '28.1 KiB/token'"},
    {"model": "gemma-4-26b-a4b-it-fp8-dynamic", "kv_cache_gib": 15.64,
     "reason": "vLLM 0.29, block_size 128, async scheduling off: 167,127 tokens printed, the group arithmetic gives "
               "161,968 (-3.1%); the five block-16 starts of the same study match to 0.05% (unresolved)"},
    {"model": "gemma-4-26b-a4b-it-fp8-dynamic", "kv_cache_gib": 8.56,
     "reason": "vLLM 0.29, block_size 48, performance mode 'throughput', optimization level 3: 27,946 tokens printed, "
               "the group arithmetic gives 40,051 (+43%); not reproduced from the source read (unresolved)"},
]

#: Checkable weight records that disagree (same matching, on weights_gib).
WEIGHT_EXCEPTIONS: list[dict] = [
    {"model": "opt-6.7b", "weights_gib": 11.41,
     "reason": "cpu_offload_gb=1: 1 GiB of weights live in host memory (12.40 - 1 = 11.40 GiB on the GPU)"},
    {"model": "opt-6.7b", "weights_gib": 10.43,
     "reason": "cpu_offload_gb=2: 2 GiB of weights live in host memory (12.40 - 2 = 10.40 GiB on the GPU)"},
    {"model": "qwen3-0.6b", "weights_gib": 1.34,
     "reason": "ROCm gfx906 fork (vllm-gfx906 image, V0 engine, 'Model loading took 1.3379 GiB'): 0.23 GiB above the "
               "tensors; the CUDA build reports 1.12 GiB for the same model (record with 161,280 KV tokens)"},
    {"model": "deepseek-coder-v2-lite", "weights_gib": 3.97,
     "reason": "vLLM 0.7-era MLA backend (log dated 02-14) kept absorbed W_Q_UK / W_UV_O matrices per layer beside the "
               "checkpoint weights (~0.21 GiB per GPU at tp=8 by our arithmetic); unverified, ours 3.71 GiB"},
    {"model": "qwen2.5-1.5b-instruct", "weights_gib": 2.98,
     "reason": "vLLM 0.30 V2 model runner on a compute-capability-7.5 card, fp16 cast from bf16: 2.98 GiB printed "
               "against 2.875 GiB of tensors (1.54 B parameters x 2 B, tied embedding); the 0.10 GiB more is not "
               "identified (the other V2 records print the tensors to 0.3%: Llama-3.1-8B on 0.31, 15.0 GiB)"},
    {"model": "llama-3.2-3b", "weights_gib": 3.2636,
     "reason": "model named only as '3.2 3b' in an issue digest; 3.26 GiB is about half the bf16 weights of "
               "Llama-3.2-3B (5.98 GiB), so the checkpoint or its precision is not the one the id suggests"},
]

#: Records whose printed weights belong to a pipeline stage other than the largest one.
STAGE_OF_RECORD: list[dict] = [
    {"model": "deepseek-v2.5", "weights_gib": 27.63, "stage": 0,
     "reason": "tp=8 x pp=2: the record keeps the first stage's print; the other stage printed 28.48 GiB (notes)"},
]


# ----------------------------------------------------------------------------- helpers
def _load_profiles():
    if not PROFILE_DIR.is_dir():
        pytest.skip(f"{PROFILE_DIR} does not exist yet (converter: python -m fitting.public_logs)")
    out = []
    for path in sorted(PROFILE_DIR.glob("*.json")):
        with open(path, encoding="utf-8") as fh:
            out.append((path, json.load(fh)))
    if not out:
        pytest.skip(f"{PROFILE_DIR} holds no profiles yet")
    return out


REG = load_registry()


def _architecture(profile) -> Architecture | None:
    model = profile.get("model") or {}
    if model.get("architecture"):
        try:
            return Architecture.from_hf_config(model["architecture"])
        except ArchitectureError:
            return None
    mid = model.get("id")
    if not mid:
        return None
    try:
        return REG.resolve(mid).architecture
    except (UnknownModelError, IncompleteModelError):
        return None


def _measured_bytes(profile, quantity: str) -> float | None:
    measured = profile.get("measured") or {}
    for unit, factor in UNIT_BYTES.items():
        value = measured.get(f"{quantity}_{unit}")
        if value is not None:
            return float(value) * factor
    return None


_DTYPE_ALIASES = {"bf16": "bfloat16", "f16": "float16", "fp16": "float16", "half": "float16", "fp32": "float32",
                  "float": "float32"}


def _vllm_dtype(profile, arch: Architecture) -> str:
    """vLLM's --dtype: explicit, else the checkpoint dtype (float32 checkpoints load in 16 bits)."""
    raw = (profile.get("precision") or {}).get("dtype")
    dtype = normalize_dtype(_DTYPE_ALIASES.get(str(raw).lower(), raw)) if raw is not None else None
    if dtype is None:
        dtype = normalize_dtype(arch.torch_dtype) or "bfloat16"
        if dtype == "float32":
            dtype = "bfloat16"
    return dtype


def _kv_dtype(profile) -> str:
    raw = (profile.get("precision") or {}).get("kv_cache_dtype")
    return "auto" if raw in (None, "", "auto") else _DTYPE_ALIASES.get(str(raw).lower(), str(raw))


def _parallel(profile) -> tuple[int, int]:
    par = profile.get("parallel") or {}
    return int(par.get("tp") or 1), int(par.get("pp") or 1)


def _name(profile) -> str:
    model = profile.get("model") or {}
    return f"{model.get('id') or ''} {model.get('name_as_given') or ''}".lower()


def _find(table: list[dict], profile, field: str, measured_bytes: float) -> dict | None:
    for entry in table:
        if entry["model"].lower() in _name(profile) and \
                abs(entry[field] * 2**30 - measured_bytes) <= 1e-6 * measured_bytes:
            return entry
    return None


def _scope_ok(profile) -> bool:
    return profile.get("measured_scope", "per_gpu") == "per_gpu"


# ----------------------------------------------------------------------------- KV
def _kv_rows():
    rows = []
    for path, profile in _load_profiles():
        gib_bytes = _measured_bytes(profile, "kv_cache")
        tokens = (profile.get("measured") or {}).get("kv_cache_tokens")
        if not gib_bytes or not tokens or not _scope_ok(profile):
            continue
        rows.append((path, profile, _architecture(profile), gib_bytes / tokens, gib_bytes))
    return rows


def test_kv_bytes_per_token_match_vllm():
    rows = _kv_rows()
    checked, unknown, failures, used = 0, 0, [], set()
    for path, profile, arch, measured, pool_bytes in rows:
        if arch is None:
            unknown += 1
            continue
        tp, pp = _parallel(profile)
        exc = _find(KV_EXCEPTIONS, profile, "kv_cache_gib", pool_bytes)
        version = profile.get("framework_version")
        eng = profile.get("engine_settings") or {}
        layout = None if profile.get("engine") == "v0" else vllm_hybrid_kv_layout(
            arch, version=version, block_size=int(eng.get("block_size") or 16), kv_cache_dtype=_kv_dtype(profile),
            dtype=_vllm_dtype(profile, arch), tp=tp)
        if layout is not None:
            work = profile.get("workload") or {}
            if not (work.get("max_model_len") and work.get("max_num_batched_tokens")) or pp > 1:
                unknown += 1
                continue
            tokens = float(vllm_pool_tokens(layout, pool_bytes, max_model_len=work["max_model_len"],
                                            max_num_batched_tokens=work["max_num_batched_tokens"], version=version,
                                            async_scheduling=eng.get("async_scheduling")))
            ours = pool_bytes / tokens if tokens > 0 else float("inf")
            note = (f"ours {tokens:,.0f} tokens (hybrid groups) vs vLLM {pool_bytes / measured:,.0f} "
                    f"({measured / ours - 1:+.2%})")
        else:
            try:
                ours = kv_bytes_per_token(arch, kv_cache_dtype=_kv_dtype(profile), dtype=_vllm_dtype(profile, arch),
                                          tp=tp, pp=pp)
            except ValueError as err:
                ours, note = None, str(err)
            else:
                note = f"ours {ours:,.0f} B/token vs vLLM {measured:,.0f} ({ours / measured - 1:+.2%})"
        agrees = ours is not None and abs(ours / measured - 1) <= KV_TOLERANCE
        checked += 1
        if exc is not None:
            used.add(id(exc))
            if agrees:
                failures.append(f"{path.name}: listed as exception ({exc['reason']}) but agrees: {note}")
        elif not agrees:
            failures.append(f"{path.name} [{_name(profile).strip()} tp={tp} pp={pp}]: {note}")
    if not rows:
        pytest.skip("no vLLM profile has both kv_cache_gib and kv_cache_tokens")
    assert checked > 0, f"{len(rows)} KV records, none with a known architecture ({unknown} unknown)"
    failures += [f"stale table entry (matches no checkable profile): {e}" for e in KV_EXCEPTIONS if id(e) not in used]
    assert not failures, "\n".join(failures)


# ----------------------------------------------------------------------------- weights
def _is_unquantized(profile) -> bool:
    """No quantization stated and none native to the checkpoint (DeepSeek-V3/R1 ship block-FP8
    weights: vLLM loads them as FP8 without a --quantization flag)."""
    q = (profile.get("precision") or {}).get("quantization")
    if not (q is None or str(q).strip().lower() in ("", "none", "null", "unquantized")):
        return False
    mid = (profile.get("model") or {}).get("id")
    try:
        return not (mid and getattr(REG.resolve(mid), "native_quantization", None))
    except (UnknownModelError, IncompleteModelError):
        return True


def test_weights_match_vllm_for_unquantized_records():
    profiles = _load_profiles()
    checked, unknown, failures, used = 0, 0, [], set()
    for path, profile in profiles:
        measured = _measured_bytes(profile, "weights")
        if measured is None or not _is_unquantized(profile) or not _scope_ok(profile):
            continue
        arch = _architecture(profile)
        if arch is None:
            unknown += 1
            continue
        tp, pp = _parallel(profile)
        dtype = _vllm_dtype(profile, arch)
        if (arch.extra or {}).get("multimodal_towers"):
            # vLLM loads the vision/audio towers too; the physics counts the language model only
            # (Qwen2.5-VL-3B: 5.75 of 7.16 GiB; InternVL3-78B: 16.93 of 21.67 GiB per GPU at tp 8): the
            # language model must be below the printed figure, and the towers under 30% of it
            lm = weight_bytes_per_gpu(arch, dtype=dtype, tp=tp, pp=pp)
            checked += 1
            if not 0.70 * measured <= lm <= measured * 1.005:
                failures.append(f"{path.name} [multimodal]: language model {lm / 2**30:.3f} GiB vs vLLM "
                                f"{measured / 2**30:.4f} GiB")
            continue
        stage = _find(STAGE_OF_RECORD, profile, "weights_gib", measured)
        if stage is not None:
            used.add(id(stage))
            ours = weight_bytes_per_stage(arch, dtype=dtype, tp=tp, pp=pp)[stage["stage"]]
        else:
            ours = weight_bytes_per_gpu(arch, dtype=dtype, tp=tp, pp=pp)
        agrees = abs(ours / measured - 1) <= WEIGHT_TOLERANCE
        note = f"ours {ours / 2**30:.3f} GiB vs vLLM {measured / 2**30:.4f} GiB ({ours / measured - 1:+.2%})"
        checked += 1
        exc = _find(WEIGHT_EXCEPTIONS, profile, "weights_gib", measured)
        if exc is not None:
            used.add(id(exc))
            if agrees:
                failures.append(f"{path.name}: listed as exception ({exc['reason']}) but agrees: {note}")
        elif not agrees:
            failures.append(f"{path.name} [{_name(profile).strip()} tp={tp} pp={pp} {dtype}]: {note}")
    if checked == 0 and unknown == 0:
        pytest.skip("no unquantized vLLM profile with weights")
    assert checked > 0, f"no unquantized weight record with a known architecture ({unknown} unknown)"
    stale = [e for e in WEIGHT_EXCEPTIONS + STAGE_OF_RECORD if id(e) not in used]
    failures += [f"stale table entry (matches no checkable profile): {e}" for e in stale]
    assert not failures, "\n".join(failures)


def test_exception_tables_are_well_formed():
    for table, field in ((KV_EXCEPTIONS, "kv_cache_gib"), (WEIGHT_EXCEPTIONS, "weights_gib"),
                         (STAGE_OF_RECORD, "weights_gib")):
        for entry in table:
            assert entry["model"] and entry[field] > 0 and len(entry["reason"]) > 20, entry
