"""llama.cpp (and servers built on it) start-up logs -> profiles.

Lines read, across the 2023-2026 log formats (``llm_load_tensors:`` / ``load_tensors:``,
``llama_new_context_with_model:`` / ``llama_context:``, ``llama_kv_cache_init:`` /
``llama_kv_cache_unified:`` / ``llama_kv_cache:``, ``sched_reserve:``):

* model buffers per device (``CUDA0 model buffer size = X MiB``, older ``CUDA0 buffer
  size``, 2023 ``VRAM used`` / ``system memory used``);
* KV buffers per device (``CUDA0 KV buffer size``; several KV caches of SWA models add
  up), ``KV self size`` / ``llama_kv_cache: size`` totals, 2023 ``VRAM kv self``;
* compute buffers per device (2023: ``VRAM scratch buffer``), recurrent-state buffers;
* ``n_ctx``, ``n_batch``, ``n_ubatch``, ``n_seq_max``, ``flash_attn`` (with the resolved
  ``Flash Attention was auto, set to enabled``), ``type_k``/``type_v`` or ``K (f16)``,
  ``offloaded N/M layers to GPU``, ``model type``, ``model ftype`` / ``file type``,
  ``general.name``, ``build``, the CUDA device names;
* the cache geometry of each ``llama_kv_cache: size = X MiB ( N cells, L layers, s/S seqs)``
  line (``kv_cells``/``kv_layers``/``kv_n_stream``; the SWA cache of an iSWA model as
  ``kv_cells_swa``/``kv_layers_swa``), ``n_ctx_seq`` (``n_ctx_per_seq``), ``kv_unified``,
  ``swa_full``, and the host ``output buffer size`` (``output_buffer_host_mib``);
* the model hyperparameters of the ``print_info:`` / ``llm_load_print_meta:`` lines and the
  per-layer ``is_swa`` flags, kept exactly as printed in ``model.hparams_printed`` (what
  :mod:`fitting.physics.llamacpp` needs to recompute the KV and compute buffers).

llama.cpp prints MiB. GPU devices are summed (``measured_scope`` = ``sum_over_gpus``
with more than one device, each device listed in the notes); host buffers (``CPU``,
``*_Host``) go to ``weights_cpu`` or the notes; remote ``RPC[...]`` devices to the notes.
"""

from __future__ import annotations

import re

from ._common import (
    NUM,
    Collector,
    Rule,
    fmt,
    measure_rule,
    measured_field,
    parse_decimal,
    parse_int,
    scan,
    setting_rule,
    sum_items,
    to_float,
)

FRAMEWORK = "llamacpp"

MARKERS = {
    "llama_model_loader": 5, "llm_load_tensors": 5, "load_tensors:": 5, "llama_new_context_with_model": 5,
    "llama_context:": 5, "llama_kv_cache": 5, "KV self size": 5, "compute buffer size": 3,
    "print_info:": 2, "ggml_cuda_init": 5, "llm_load_print_meta": 5,
}

_VARIANTS = (("ollama", "ollama (llama.cpp engine)"), ("koboldcpp", "koboldcpp"),
             ("llama_cpp.server", "llama-cpp-python"), ("mla_attn", "ik_llama.cpp"))
_FLOAT_FTYPES = {"F16", "BF16", "F32", "all F32", "MOSTLY_F16"}


_GPU_DEVICE = re.compile(r"(?:CUDA|ROCm|HIP|Vulkan|SYCL|MUSA|CANN|OpenCL|Kompute)\d{1,3}(?:_Split)?|Metal|VRAM")


def _kind(device):
    """'gpu', 'host', 'remote' or 'unknown' for a llama.cpp buffer's device name."""
    if device.startswith("RPC"):
        return "remote"
    if device.startswith("CPU") or device.endswith("_Host") or device.endswith("_Mapped"):
        return "host"
    return "gpu" if _GPU_DEVICE.fullmatch(device) else "unknown"


def _device_rule(c, literal, pattern, kind, mode):
    regex = re.compile(pattern)

    def handler(m, line, _ctx):
        value = parse_decimal(m.group(2))
        if value is not None:
            c.add(f"{kind}:{m.group(1)}", value, "mib", line=line, mode=mode)

    return Rule(literal, regex, handler)


#: ``print_info:`` keys kept in ``model.hparams_printed`` (integers or per-layer arrays; ``arch`` text).
HPARAM_KEYS = ("arch", "n_ctx_train", "n_embd", "n_layer", "n_head", "n_head_kv", "n_rot", "n_swa", "n_swa_pattern",
               "n_embd_head_k", "n_embd_head_v", "n_gqa", "n_embd_k_gqa", "n_embd_v_gqa", "n_ff", "n_expert",
               "n_expert_used", "n_ff_exp", "n_ff_shexp", "n_expert_shared", "n_lora_kv", "n_lora_q",
               "n_embd_head_k_mla", "n_embd_head_v_mla", "n_vocab", "n_layer_dense_lead", "n_embd_inp")
_HPARAM = re.compile(r"(?:print_info|llm_load_print_meta): (%s)\s*=\s*(\S.{0,4000}?)\s*$"
                     % "|".join(sorted(HPARAM_KEYS, key=len, reverse=True)))
_INT_LIST = re.compile(r"\[\s*(\d{1,9}(?:,\s*\d{1,9}){0,1023})\s*(?:,\s*\.\.\.\s*)?\]")
_KV_LINE = re.compile(rf"llama_kv_cache(?:_unified)?: size\s*=\s*{NUM} MiB \(\s*(\d{{1,9}}) cells,\s*(\d{{1,5}}) layers,"
                      rf"\s*(\d{{1,5}})(?:/\s*(\d{{1,5}}))? seqs\)")
_IS_SWA = re.compile(r"layer\s+(\d{1,5}) assigned to device [^,]{1,60}, is_swa = ([01])")


def _hparam(c, m, line):
    key, raw = m.group(1), m.group(2)
    if key == "arch":
        value = raw.strip() if re.fullmatch(r"[\w.-]{1,60}", raw.strip()) else None
    elif raw.startswith("["):
        mm = _INT_LIST.fullmatch(raw)
        value = [int(x) for x in re.findall(r"\d+", mm.group(1))] if mm and "..." not in raw else None
    else:
        value = parse_int(raw)
    if value is not None:
        c.setting(f"hp:{key}", value)


def _kv_line(c, m, line):
    """One ``llama_kv_cache: size = ...`` line: the geometry of one cache (SWA after ``creating SWA``)."""
    cells, layers, seqs = parse_int(m.group(2)), parse_int(m.group(3)), parse_int(m.group(4))
    streams = parse_int(m.group(5)) if m.group(5) else None
    suffix = "_swa" if c.run.settings.get("_next_kv_is_swa") else ""
    if c.run.settings.get(f"kv_cells{suffix}") is not None:
        return
    c.setting(f"kv_cells{suffix}", cells)
    c.setting(f"kv_layers{suffix}", layers)
    if streams is not None:
        c.setting("kv_n_stream", streams)
    c.setting("kv_seqs", seqs)


def _swa_marker(c, line):
    c.setting("_next_kv_is_swa", "creating     SWA" in line or "creating SWA" in line, overwrite=True)


def _rules(c):
    m = lambda lit, pat, key, **kw: measure_rule(c, lit, pat, key, unit="mib", **kw)  # noqa: E731
    s = lambda lit, pat, key, fn=str.strip, **kw: setting_rule(c, lit, pat, key, fn, **kw)  # noqa: E731
    dev = r"(\S{1,60})"
    return [
        Rule("loaded meta data", re.compile(r"loaded meta data with \d+ key-value pairs and \d+ tensors from (\S+)"),
             lambda mm, line, _: (c.start(), c.setting("model_file", mm.group(1), fragment=line))),
        Rule("build", re.compile(r"\bbuild(?: =|:) (\d{1,7}) \(([0-9a-f]{4,40})\)"),
             lambda mm, line, _: (c.start(), c.setting("build", f"b{mm.group(1)} ({mm.group(2)})", fragment=line))),
        Rule("Device ", re.compile(r"Device (\d{1,3}): ([^,]{1,80}), compute capability"),
             lambda mm, line, _: c.setting(f"device_name:{mm.group(1)}", mm.group(2).strip(), fragment=line)),
        _device_rule(c, "load_tensors:", rf"load_tensors:\s+{dev} (?:model )?buffer size\s*=\s*{NUM} MiB", "model",
                     "sum"),
        m("VRAM used", rf"load_tensors: VRAM used\s*[:=]\s*{NUM} MiB", "model:VRAM", mode="sum"),
        m("system memory used", rf"load_tensors: system memory used\s*=\s*{NUM} MiB", "model:CPU", mode="sum"),
        _device_rule(c, "KV buffer size", rf"{dev} KV buffer size\s*=\s*{NUM} MiB", "kv", "sum"),
        _device_rule(c, "RS buffer size", rf"{dev} RS buffer size\s*=\s*{NUM} MiB", "rs", "sum"),
        _device_rule(c, "compute buffer size", rf"{dev} compute buffer size\s*=\s*{NUM} MiB", "compute", "once"),
        m("KV self size", rf"KV self size\s*=\s*{NUM} MiB", "kv_self", mode="sum"),
        m("llama_kv_cache", rf"llama_kv_cache(?:_unified)?: size\s*=\s*{NUM} MiB", "kv_self", mode="sum"),
        m("VRAM kv self", rf"VRAM kv self\s*=\s*{NUM} M(?:i)?B", "kv:VRAM", mode="sum"),
        m("VRAM scratch buffer", rf"VRAM scratch buffer:\s*{NUM} MiB", "compute:VRAM"),
        m("total VRAM used", rf"total VRAM used:\s*{NUM} MiB", "vram_total"),
        m("compute buffer total size", rf"compute buffer total size\s*=\s*{NUM} MiB", "compute_total",
          measurement=False),
        s("n_ctx", rf"\bn_ctx\s+=\s*{NUM}", "n_ctx", parse_int),
        s("n_batch", rf"\bn_batch\s+=\s*{NUM}", "n_batch", parse_int),
        s("n_ubatch", rf"\bn_ubatch\s+=\s*{NUM}", "n_ubatch", parse_int),
        s("n_seq_max", rf"\bn_seq_max\s+=\s*{NUM}", "n_seq_max", parse_int),
        s("causal attn", rf"\bcausal attn\s+=\s*{NUM}", "causal_attn", parse_int),
        s("flash_attn", r"\bflash_attn\s+=\s*(\w{1,10})", "flash_attn"),
        s("Flash Attention was", r"Flash Attention was \w+, set to (\w{1,10})", "flash_attn", overwrite=True),
        s("type_k", r"type_k = '(\w{1,10})'", "type_k"),
        s("type_v", r"type_v = '(\w{1,10})'", "type_v"),
        s("K (", rf"\bK \((\w{{1,10}})\):\s+{NUM} MiB", "type_k"),
        s("V (", rf"\bV \((\w{{1,10}})\):\s+{NUM} MiB", "type_v"),
        Rule("layers to GPU", re.compile(r"offloaded (\d{1,4})/(\d{1,4}) layers to GPU"),
             lambda mm, line, _: (c.setting("n_gpu_layers", parse_int(mm.group(1)), fragment=line),
                                  c.setting("n_layers_total", parse_int(mm.group(2))))),
        s("model type", r"model type\s+=\s+(\S.{0,40}?)\s*$", "model_type"),
        s("ftype", r"model ftype\s+=\s+(\S.{0,40}?)\s*$", "ftype"),
        s("file type", r"(?:print_info|llm_load_print_meta): file type\s+=\s+(\S.{0,40}?)\s*$", "ftype"),
        s("general.name", r"general\.name\s+(?:str\s+)?=\s+(\S.{0,120}?)\s*$", "general_name"),
        s("general.architecture", r"general\.architecture\s+str\s+=\s+([\w.-]{1,60})\s*$", "hp:arch"),
        Rule(" = ", _HPARAM, lambda mm, line, _: _hparam(c, mm, line)),
        Rule("cells,", _KV_LINE, lambda mm, line, _: _kv_line(c, mm, line)),
        Rule("KV cache", re.compile(r"creating\s+(?:non-)?SWA KV cache"), lambda mm, line, _: _swa_marker(c, mm.group(0))),
        Rule("is_swa", _IS_SWA, lambda mm, line, _: c.setting(f"swa_layer:{int(mm.group(1))}", int(mm.group(2)))),
        s("n_ctx_seq", rf"\bn_ctx_seq\s+=\s*{NUM}", "n_ctx_seq", parse_int),
        s("n_ctx_per_seq", rf"\bn_ctx_per_seq\s+=\s*{NUM}", "n_ctx_seq", parse_int),
        s("kv_unified", r"\bkv_unified\s+=\s*(true|false)\b", "kv_unified", lambda r: r == "true"),
        s("swa_full", r"\bswa_full\s+=\s*(true|false|0|1)\b", "swa_full", lambda r: r in ("true", "1")),
        s("output buffer size", rf"\S{{1,60}}_Host\s+output buffer size\s*=\s*{NUM} MiB", "output_buffer_host_mib",
          lambda r: to_float(parse_decimal(r))),
        s("output buffer size", rf"\bCPU\s+output buffer size\s*=\s*{NUM} MiB", "output_buffer_host_mib",
          lambda r: to_float(parse_decimal(r))),
    ]


def _devices(run, kind, notes):
    """(gpu items, host items, remote items) of one buffer kind; unknown devices go to the notes."""
    groups = {"gpu": [], "host": [], "remote": [], "unknown": []}
    for key, items in list(run.sums.items()) + [(k, [v]) for k, v in run.items.items()]:
        if key.startswith(kind + ":"):
            device = key.split(":", 1)[1]
            groups[_kind(device)].extend((device, it) for it in items)
    if groups["unknown"]:
        notes.append(f"{kind} buffers on unrecognised devices, not recorded: {_listing(groups['unknown'])}")
    return groups["gpu"], groups["host"], groups["remote"]


def _listing(pairs):
    return ", ".join(f"{d} {fmt(it.value)} MiB" for d, it in pairs)


def _put_sum(measured, notes, name, pairs):
    if not pairs:
        return
    total, addends = sum_items([it for _, it in pairs], "mib")
    measured_field(measured, name, total, "mib")
    if len(pairs) > 1:
        notes.append(f"sum: {name}_mib = {addends} ({_listing(pairs)})")


def _parts(run, variant):
    measured, notes, flags = {}, [], []
    gpu_w, host_w, remote_w = _devices(run, "model", notes)
    gpu_kv, host_kv, remote_kv = _devices(run, "kv", notes)
    gpu_c, host_c, remote_c = _devices(run, "compute", notes)
    gpu_rs, _, _ = _devices(run, "rs", notes)
    _put_sum(measured, notes, "weights", gpu_w)
    _put_sum(measured, notes, "weights_cpu", host_w)
    _put_sum(measured, notes, "compute_buffer", gpu_c)
    _put_sum(measured, notes, "other", gpu_rs)
    if gpu_rs:
        notes.append("other: recurrent-state (RS) buffers on the GPU")
    kv_self = run.sums.get("kv_self", [])
    if gpu_kv:
        _put_sum(measured, notes, "kv_cache", gpu_kv)
    elif kv_self and (host_kv or "model:VRAM" in run.sums) and not gpu_kv:
        notes.append(f"KV self size {fmt(kv_self[0].value)} MiB not recorded: this llama.cpp build printed no "
                     "GPU KV buffer, so the cache stayed in host memory")
    elif kv_self:
        _put_sum(measured, notes, "kv_cache", [("all devices", it) for it in kv_self])
        notes.append("kv_cache: llama.cpp's KV cache size total (no per-device KV lines)")
    vram_total = run.get("vram_total")
    if vram_total is not None:
        measured_field(measured, "peak_total", vram_total.value, "mib")
        notes.append("peak_total: llama.cpp's own 'total VRAM used' (its buffers, not nvidia-smi)")
    for label, pairs in (("host KV", host_kv), ("host compute", host_c)):
        if pairs:
            notes.append(f"{label} (not GPU memory): {_listing(pairs)}")
    for label, pairs in (("model", remote_w), ("KV", remote_kv), ("compute", remote_c)):
        if pairs:
            flags.append("remote_devices")
            notes.append(f"remote RPC {label} buffers (other machine, not summed): {_listing(pairs)}")
    total = run.get("compute_total")
    if total is not None:
        notes.append(f"'compute buffer total size' {fmt(total.value)} MiB (host + device, not recorded)")
    if not measured:
        return None
    devices = sorted({d for d, _ in gpu_w + gpu_kv + gpu_c})
    s = run.settings
    names = {v for k, v in s.items() if k.startswith("device_name:")}
    ftype = s.get("ftype")
    type_k, type_v = s.get("type_k"), s.get("type_v")
    if type_v and type_k and type_v != type_k:
        notes.append(f"type_v = {type_v} (type_k = {type_k})")
    name = s.get("general_name") or (s.get("model_file") or "").replace("\\", "/").rsplit("/", 1)[-1] or None
    hparams = {k.split(":", 1)[1]: v for k, v in s.items() if k.startswith("hp:")}
    swa_flags = {int(k.split(":", 1)[1]): v for k, v in s.items() if k.startswith("swa_layer:")}
    n_layer = hparams.get("n_layer")
    if swa_flags and isinstance(n_layer, int) and sorted(swa_flags) == list(range(n_layer)):
        hparams["swa_layers"] = [swa_flags[i] for i in range(n_layer)]
    if s.get("model_file"):
        notes.append(f"model file {s['model_file']}")
    encoder = s.get("causal_attn") == 0
    if encoder:
        flags.append("encoder_model")
    return {
        **({"use_in_fit": False,
            "exclude_reason": "non-causal encoder (embedding / reranker) model, 'causal attn = 0': no generation, "
                              "its graph has no output logits and its KV cache is not used; not an LLM start"}
           if encoder else {}),
        "measured": measured,
        "measured_scope": "sum_over_gpus" if len(devices) > 1 else "per_gpu",
        "notes": notes,
        "flags": flags,
        "framework_version": s.get("build"),
        "framework_variant": variant,
        "model": {"name_as_given": name, "weight_format": ftype, "hparams_printed": hparams or None},
        "gpu": {"name": names.pop() if len(names) == 1 else None, "count": len(devices) or None},
        "workload": {"context_len": s.get("n_ctx")},
        "precision": {"quantization": f"gguf:{ftype}" if ftype and ftype not in _FLOAT_FTYPES else None,
                      "kv_cache_dtype": type_k},
        "engine_settings": {k: s.get(k) for k in ("n_batch", "n_ubatch", "n_seq_max", "flash_attn", "n_gpu_layers",
                                                  "n_layers_total", "model_type", "type_k", "type_v", "n_ctx_seq",
                                                  "kv_unified", "swa_full", "kv_cells", "kv_layers", "kv_n_stream",
                                                  "kv_cells_swa", "kv_layers_swa", "kv_seqs",
                                                  "output_buffer_host_mib")},
        "kv_cache_mode": "growing",
    }


def parse(lines):
    """Parse llama.cpp log lines into ``[(Run, parts), ...]``, one per model load."""
    c = Collector()
    variants = set()
    rules = _rules(c) + [Rule(k, re.compile(re.escape(k)), lambda mm, line, _: variants.add(mm.group(0)))
                         for k, _ in _VARIANTS]
    scan(lines, rules)
    variant = next((label for key, label in _VARIANTS if key in variants), None)
    out = []
    for run in c.finish():
        parts = _parts(run, variant)
        if parts is not None:
            out.append((run, parts))
    return out
