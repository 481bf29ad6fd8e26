"""transformers backend: the registry's real architecture, random weights, no download.

Memory does not depend on weight values, so the model is built from its real config
(``AutoConfig.for_model``) with random weights directly on the device
(``AutoModelForCausalLM.from_config`` under ``torch.device(device)``), and runs
``generate`` on random token ids: one prefill of ``input_len`` tokens for ``batch_size``
sequences, then decode steps up to ``output_len`` new tokens, with the real KV cache
transformers uses by default (``DynamicCache``; ``fp8``/``fp8_e4m3`` KV uses
``QuantizedCache(backend="fp8")``, float8_e4m3fn storage).

Each scenario runs in a fresh process (``python -m fitting.profile._worker``) so that the
CUDA caching allocator's peaks and the context do not leak between scenarios. The worker
records the weights (torch allocated after the build), torch's peak allocated/reserved,
the NVML peak of the device, the CUDA context and the exact bytes of the KV cache tensors.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

from fitting.data.registry import load_registry, resolve_model
from fitting.profile._proc import run_logged
from fitting.profile.errors import UNSUPPORTED_MARKER, classify_error
from fitting.profile.nvml import NvmlSampler, visible_gpu_indices
from fitting.profile.records import RunResult

#: Registry keys that are bookkeeping, not config.json fields.
_META_KEYS = frozenset({
    "verification", "field_sources", "sources", "notes", "params", "layer_pattern", "weight_format",
    "torch_dtype", "dtype", "architectures", "quantization_config", "text_model_type", "id", "aliases",
    "trust_remote_code", "target", "overrides", "differs", "note", "kind",
})

#: Registry model types that transformers knows under another name.
_MODEL_TYPE_ALIASES = {"kimi_k2": "deepseek_v3"}

#: Normalised registry key -> the key this model type's config.json uses.
_KEY_RENAMES = {
    "opt": {"intermediate_size": "ffn_dim"},
    "falcon": {"num_key_value_heads": "num_kv_heads"},
    "gpt_bigcode": {"hidden_size": "n_embd", "num_hidden_layers": "n_layer", "num_attention_heads": "n_head",
                    "intermediate_size": "n_inner", "max_position_embeddings": "n_positions"},
}

#: Keys each rope type needs; a rope_scaling entry missing one is dropped (memory does not depend on it).
_ROPE_REQUIRED = {
    "default": (),
    "linear": ("factor",),
    "dynamic": ("factor",),
    "yarn": ("factor",),
    "longrope": ("short_factor", "long_factor"),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
}

_TORCH_DTYPES = {"float16": "float16", "bfloat16": "bfloat16", "float32": "float32"}


class UnsupportedScenario(RuntimeError):
    """The scenario cannot run on the transformers backend as written."""


# --------------------------------------------------------------------------- config


def _complete_rope(rope) -> bool:
    if not isinstance(rope, dict):
        return False
    rope_type = rope.get("rope_type", rope.get("type"))
    required = _ROPE_REQUIRED.get(rope_type)
    return required is not None and all(k in rope for k in required)


def _registry_raw_fields(model_id: str) -> dict:
    """A model's stored config fields from the registry file (alias ``overrides`` applied).

    Used when the registry entry carries no ``hf_config``: ``fitting/data/registry.yaml``
    keeps each model's config.json keys under ``config`` and aliases as ``target`` +
    ``overrides``.
    """

    registry = load_registry()
    record = registry.raw(model_id)
    overrides = {}
    if "target" in record:  # an alias
        overrides = dict(record.get("overrides") or {})
        record = registry.raw(record["target"])
    fields = dict(record.get("config") or {})
    fields.update(overrides)
    return fields


def hf_config_fields(entry) -> dict:
    """config.json-style fields of a registry entry, ready for ``AutoConfig.for_model``.

    Takes ``entry.hf_config`` (the stored config fields) where the entry has one, else
    the entry's ``config`` fields from ``fitting/data/registry.yaml``. Drops bookkeeping keys and partial
    ``rope_scaling`` entries, builds multimodal checkpoints' text model
    (``text_model_type``), and maps normalised keys back to the model type's own names
    (OPT ``ffn_dim``, Falcon ``num_kv_heads``, GPT-BigCode ``n_embd``...).

    Returns
    -------
    dict
        Includes ``model_type``.
    """
    raw = getattr(entry, "hf_config", None)
    if not raw:
        raw = _registry_raw_fields(entry.id)
    raw = dict(raw)
    model_type = raw.get("text_model_type") or raw.get("model_type")
    if not model_type:
        raise UnsupportedScenario(f"{getattr(entry, 'id', '?')}: the registry has no model_type for it")
    model_type = _MODEL_TYPE_ALIASES.get(model_type, model_type)
    fields = {k: v for k, v in raw.items() if k not in _META_KEYS and k != "model_type"}
    for key in ("rope_scaling", "rope_parameters"):
        if key in fields and not _complete_rope(fields[key]):
            del fields[key]
    for old, new in _KEY_RENAMES.get(model_type, {}).items():
        if old in fields:
            fields[new] = fields.pop(old)
    fields["model_type"] = model_type
    return fields


def build_config(fields: dict):
    """``transformers.AutoConfig.for_model(model_type, **fields)``."""
    from transformers import AutoConfig  # optional dependency (profile extra)

    fields = dict(fields)
    model_type = fields.pop("model_type")
    try:
        return AutoConfig.for_model(model_type, **fields)
    except ValueError as exc:
        if "Unrecognized model identifier" in str(exc):
            raise UnsupportedScenario(f"transformers has no model type {model_type!r}: {exc}") from None
        raise


def torch_dtype(name: str, stored: str | None = None):
    """The torch dtype of a scenario's ``dtype``.

    ``auto`` means the checkpoint's stored dtype (``stored``) when it is float16 or
    bfloat16, else bfloat16 (as vLLM does for float32 checkpoints).
    """
    import torch  # optional dependency (profile extra)

    if name == "auto":
        name = stored if stored in ("float16", "bfloat16") else "bfloat16"
    return getattr(torch, _TORCH_DTYPES[name])


def build_model(config, *, dtype, device: str = "cpu"):
    """Random-weight causal LM from ``config``, created directly on ``device`` in ``dtype``, eval mode."""
    import torch  # optional dependency (profile extra)
    from transformers import AutoModelForCausalLM  # optional dependency (profile extra)

    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def make_cache(config, kv_cache_dtype: str):
    """The KV cache object for ``generate``: ``None`` (transformers' default) or an fp8 cache."""
    if kv_cache_dtype == "auto":
        return None
    if kv_cache_dtype in ("fp8", "fp8_e4m3"):
        from transformers.cache_utils import QuantizedCache  # optional dependency (profile extra)

        try:
            return QuantizedCache(backend="fp8", config=config)
        except (ValueError, TypeError) as exc:
            raise UnsupportedScenario(f"no fp8 KV cache for this model in this transformers (QuantizedCache backend 'fp8'): {exc}")
    raise UnsupportedScenario(f"kv_cache_dtype {kv_cache_dtype!r} has no transformers cache")


def generate(model, config, *, batch_size: int, input_len: int, output_len: int, kv_cache_dtype: str = "auto",
             seed: int = 0):
    """Prefill ``input_len`` random tokens for ``batch_size`` sequences and decode to ``output_len`` new tokens.

    Returns
    -------
    cache
        The KV cache after generation (it holds ``input_len + output_len - 1`` tokens: the
        last generated token is never fed back).
    """

    import torch  # optional dependency (profile extra)
    from transformers import GenerationConfig  # optional dependency (profile extra)

    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    vocab = int(getattr(config, "vocab_size", None) or config.get_text_config().vocab_size)
    ids = torch.randint(0, vocab, (batch_size, input_len), generator=gen).to(device)
    gc = GenerationConfig(max_new_tokens=output_len, min_new_tokens=output_len, do_sample=False, use_cache=True,
                          return_dict_in_generate=True, pad_token_id=0, eos_token_id=None, bos_token_id=None)
    kwargs = {}
    cache = make_cache(config, kv_cache_dtype)
    if cache is not None:
        kwargs["past_key_values"] = cache
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        out = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=gc, **kwargs)
    if out.sequences.shape[1] != input_len + output_len:
        raise RuntimeError(f"generate produced {out.sequences.shape[1] - input_len} tokens, expected {output_len}")
    return out.past_key_values


def cache_tensor_bytes(cache) -> int:
    """Bytes of every tensor held by a KV cache (layers, quantized states, scales), each counted once."""
    import torch  # optional dependency (profile extra)

    seen, total = set(), 0

    def visit(obj):
        nonlocal total
        if torch.is_tensor(obj):
            key = (obj.data_ptr(), obj.numel(), obj.dtype)
            if obj.numel() and key not in seen:
                seen.add(key)
                total += obj.numel() * obj.element_size()
        elif isinstance(obj, (list, tuple)):
            for item in obj:
                visit(item)
        elif isinstance(obj, dict):
            for item in obj.values():
                visit(item)

    layers = getattr(cache, "layers", None)
    if layers is not None:
        for layer in layers:
            visit(vars(layer))
    else:  # older transformers: key_cache / value_cache lists
        visit(getattr(cache, "key_cache", []))
        visit(getattr(cache, "value_cache", []))
    return total


def _module_bytes(model) -> int:
    return sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))


# --------------------------------------------------------------------------- measurement (in the worker)


def measure_in_process(scenario, *, device: str = "cuda:0", fields: dict | None = None) -> dict:
    """Build, run and measure one scenario in this process (the worker calls this).

    Parameters
    ----------
    scenario : Scenario
    device : str
        ``cuda:K`` for a measurement; ``cpu`` runs the same steps without memory counters
        (used by tests).
    fields : dict, optional
        config.json fields (default: from the registry entry of ``scenario.model``).

    Returns
    -------
    dict
        ``measured`` (bytes: ``weights_bytes``, ``kv_cache_bytes`` and on CUDA
        ``peak_allocated_bytes``, ``peak_reserved_bytes``, ``peak_total_bytes``,
        ``cuda_context_bytes``), ``details`` (parameter bytes, cached tokens, dtype, cache
        class) and ``versions``.
    """
    import torch  # optional dependency (profile extra)
    import transformers  # optional dependency (profile extra)

    if scenario.tp != 1:
        raise UnsupportedScenario(f"tp={scenario.tp}: the transformers runner measures one GPU")
    if scenario.quantization:
        raise UnsupportedScenario(f"quantization={scenario.quantization!r} needs a real quantized checkpoint")
    stored_dtype = None
    if fields is None:

        entry = resolve_model(scenario.model)
        fields = hf_config_fields(entry)
        stored_dtype = getattr(getattr(entry, "architecture", None), "torch_dtype", None)
    dtype = torch_dtype(scenario.dtype, stored_dtype)
    cuda = device.startswith("cuda")
    torch.manual_seed(0)
    measured, details = {}, {}
    sampler = NvmlSampler(visible_gpu_indices(device, 1)) if cuda else None
    if cuda:
        sampler.start()  # baseline: before this process touches the GPU
        torch.cuda.set_device(device)
        torch.zeros(1, device=device)  # creates the context; the freed block stays in torch's reserve
        torch.cuda.synchronize()
        now = sampler.current_bytes()
        if now:
            (idx, used), = now.items()
            measured["cuda_context_bytes"] = max(0, used - sampler.baseline_bytes[idx] - torch.cuda.memory_reserved())
    try:
        config = build_config(fields)
        model = build_model(config, dtype=dtype, device=device)
        details["parameter_and_buffer_bytes"] = _module_bytes(model)
        details["attn_implementation"] = getattr(model.config, "_attn_implementation", None)
        if cuda:
            torch.cuda.synchronize()
            measured["weights_bytes"] = int(torch.cuda.memory_allocated())
            torch.cuda.reset_peak_memory_stats()
        else:
            measured["weights_bytes"] = details["parameter_and_buffer_bytes"]
        cache = generate(model, config, batch_size=scenario.batch_size, input_len=scenario.input_len,
                         output_len=scenario.output_len, kv_cache_dtype=scenario.kv_cache_dtype)
        if cuda:
            torch.cuda.synchronize()
            measured["peak_allocated_bytes"] = int(torch.cuda.max_memory_allocated())
            measured["peak_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
        measured["kv_cache_bytes"] = cache_tensor_bytes(cache)
        details.update(cached_tokens=int(cache.get_seq_length()), cache_class=type(cache).__name__,
                       torch_dtype=str(dtype).replace("torch.", ""))
    finally:
        if sampler is not None:
            sampler.stop()
    if sampler is not None and sampler.available:
        peak = sampler.peak_over_baseline_bytes()
        measured["peak_total_bytes"] = int(max(peak.values()))
        details["nvml_samples"] = sampler.samples
    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "torch_cuda": torch.version.cuda}
    if cuda:
        versions["torch_device_name"] = torch.cuda.get_device_name(device)
    return {"measured": measured, "details": details, "versions": versions}


# --------------------------------------------------------------------------- parent side


def worker_command(scenario, *, device: str, result_path) -> list[str]:
    """The worker's argument list (no shell): ``python -m fitting.profile._worker ...``."""
    blob = json.dumps(scenario.to_dict(), sort_keys=True, separators=(",", ":"))
    return [sys.executable, "-m", "fitting.profile._worker", "--device", device, "--result", str(result_path),
            "--scenario", blob]


_NOTES = (
    "transformers generate() on random token ids with random weights built from the registry config "
    "(no download). weights_bytes: torch.cuda.memory_allocated after the build (parameters + buffers). "
    "peak_allocated_bytes / peak_reserved_bytes: torch.cuda.max_memory_allocated / max_memory_reserved over "
    "generate, weights included. kv_cache_bytes: bytes of the cache tensors after generate "
    "(input_len + output_len - 1 tokens). peak_total_bytes: NVML device 'used' peak minus 'used' before the "
    "worker touched the GPU (CUDA context and cuBLAS workspaces included). cuda_context_bytes: NVML 'used' "
    "after CUDA initialisation minus the baseline and torch's reserved memory."
)


def run_transformers_scenario(scenario, *, log_path, device: str = "cuda:0", timeout_s: float | None = None) -> RunResult:
    """Run one scenario in a fresh worker process and collect its measurement.

    Parameters
    ----------
    scenario : Scenario
    log_path : path
        Worker output; the result JSON goes beside it (``<id>.result``, not ``.json``: profile loaders glob ``*.json``).
    device : str
        ``cuda:K`` (``cpu`` works, without memory counters).
    timeout_s : float, optional
        Wall-clock limit, seconds.
    """
    log_path = Path(log_path)
    result_path = log_path.with_suffix(".result")
    if result_path.exists():
        result_path.unlink()
    argv = worker_command(scenario, device=device, result_path=result_path)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    src_root = str(Path(__file__).resolve().parents[2])  # the worker imports this checkout's fitting
    env["PYTHONPATH"] = src_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = run_logged(argv, log_path, timeout_s=timeout_s, env=env)
    payload = None
    if result_path.exists():
        try:
            payload = json.loads(result_path.read_text())
        except ValueError:
            payload = None
    if proc.timed_out or payload is None or payload.get("status") != "ok":
        message = None if payload is None else payload.get("message")
        error = classify_error(proc.log_text, timed_out=proc.timed_out, timeout_s=timeout_s,
                               returncode=proc.returncode, message=message)
        return RunResult(False, command=argv, error=error, wall_s=proc.wall_s)
    measured = payload["measured"]
    details = payload.get("details", {})
    evidence = "fitting.profile worker: " + " ".join(f"{k}={v}" for k, v in sorted(measured.items()))
    settings = {"kv_cache_impl": details.get("cache_class"), "cached_tokens": details.get("cached_tokens"),
                "torch_dtype": details.get("torch_dtype"), "attn_implementation": details.get("attn_implementation")}
    return RunResult(True, measured=measured, command=argv, evidence=evidence, notes=_NOTES,
                     versions=payload.get("versions", {}), wall_s=proc.wall_s,
                     engine_settings={k: v for k, v in settings.items() if v is not None})


__all__ = [
    "UnsupportedScenario", "hf_config_fields", "build_config", "build_model", "torch_dtype", "make_cache",
    "generate", "cache_tensor_bytes", "measure_in_process", "worker_command", "run_transformers_scenario",
    "UNSUPPORTED_MARKER",
]
