"""``python -m fitting.estimate``: GPU memory of one configuration, and whether it fits.

Thin CLI over :meth:`fitting.estimator.Estimator.query`: a readable table by default,
one JSON object with ``--json``. Bad input (unknown model, tp not dividing the attention
heads, negative lengths, unknown dtype, unreadable coefficient file) prints one line
``error: ...`` on stderr and exits with status 2.

Examples
--------
::

    python -m fitting.estimate --framework vllm --model meta-llama/Llama-3.1-70B --tp 4 \\
        --batch-size 32 --input-len 8192 --output-len 0 --kv-cache-dtype fp8 --gpu H100
    python -m fitting.estimate --framework transformers --config path/to/config.json \\
        --batch-size 4 --input-len 2048 --output-len 256 --gpu-memory-gib 24 --json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from fitting.data.model_source import ModelSourceError, resolve_any
from fitting.estimator import Estimator
from fitting.estimator.pool import POOL_LABEL

EXIT_BAD_INPUT = 2
_REPO_PARAMS = Path(__file__).resolve().parent.parent / "fitted_params"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fitting.estimate",
        description="GPU memory (GiB per GPU) of an LLM under an inference framework, with prediction "
                    "intervals from the fitted coefficients, and, given a GPU, the probability that it fits, "
                    "the largest batch and context that fit, and (vLLM) the KV pool.",
        epilog="Omitted settings take the framework's own defaults (vLLM: max_num_seqs 256, "
               "max_num_batched_tokens 8192, gpu_memory_utilization 0.9); every default applied is listed "
               "in the output. Memory is GiB = 2**30 bytes.")
    p.add_argument("--framework", help="vllm, sglang, trtllm, tgi, llamacpp, transformers, pytorch "
                                       "(default: the framework of --params, else vllm)")
    p.add_argument("--model", help="model id or path, resolved in this order: the curated registry (id or alias, "
                                   "e.g. meta-llama/Llama-3.1-8B), a local checkpoint folder or config.json, the "
                                   "Hugging Face Hub (config.json and safetensors metadata, no weights; cached)")
    p.add_argument("--config", help="path to a Hugging Face config.json or checkpoint folder (instead of --model)")
    p.add_argument("--offline", action="store_true", help="never use the network: the registry, local paths and "
                                                          "huggingface_hub's cache only (HF_HUB_OFFLINE=1 does the same)")
    p.add_argument("--revision", help="Hub revision (branch, tag or commit) of --model (default: main)")
    p.add_argument("--params", help="coefficient file or fitted_params/<framework>/ folder (default: "
                                    "./fitted_params/<framework>/ if present, else the repository's)")
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel degree (default 1)")
    p.add_argument("--pp", type=int, default=1, help="pipeline-parallel degree (default 1)")
    p.add_argument("--batch-size", type=int, help="concurrent sequences of the workload (frameworks whose KV "
                                                  "cache grows: transformers, llama.cpp; default 1); for vLLM the "
                                                  "same as --max-num-seqs")
    p.add_argument("--max-num-seqs", type=int, help="vLLM engine setting max_num_seqs: it sizes the sampler and the "
                                                    "CUDA graphs, not the workload (default: vLLM's own for the "
                                                    "version and GPU, reported)")
    p.add_argument("--concurrency", type=int, help="KV-pool engines (vLLM): concurrent requests of the workload, "
                                                   "each --input-len + --output-len tokens (default 1: one "
                                                   "max_model_len sequence, the engine-start check)")
    p.add_argument("--vllm-version", help="vLLM version whose defaults and mechanics apply (default: the newest "
                                          "these facts cover)")
    p.add_argument("--tgi-version", help="TGI release whose warm-up and pool rule apply: up to 2.4 the warm-up "
                                         "prefill also holds the log-probabilities of every prompt token "
                                         "(default: the newest read, 3.3.7)")
    p.add_argument("--transformers-version", help="transformers version whose peak-memory mechanics apply "
                                                 "(default: the newest read, 5.24.0)")
    p.add_argument("--interconnect", choices=("nvlink", "pcie"), help="vLLM with several GPUs: how they are "
                   "connected; PCIe cards (custom all-reduce off) hold less non-torch memory (default: the GPU's "
                   "usual one with --gpu, else nvlink)")
    p.add_argument("--enforce-eager", action="store_true", help="vLLM --enforce-eager: no CUDA graphs")
    p.add_argument("--input-len", type=int, help="prompt tokens per sequence")
    p.add_argument("--output-len", type=int, help="generated tokens per sequence")
    p.add_argument("--max-model-len", type=int, help="context limit in tokens; with no --input-len/--output-len "
                                                     "each sequence fills it (default: the model's "
                                                     "max_position_embeddings)")
    p.add_argument("--max-num-batched-tokens", type=int, help="tokens per forward pass (default: framework's, "
                                                              "vLLM 8192)")
    p.add_argument("--dtype", help="weight/activation dtype (default: from the model's torch_dtype)")
    p.add_argument("--quantization", help="weight format, e.g. fp8, awq, gptq, bnb-nf4, gguf:Q4_K_M, or none "
                                          "(default: the checkpoint's native format, else none)")
    p.add_argument("--kv-cache-dtype", help="auto (= dtype), fp8, ... (default auto)")
    p.add_argument("--gpu", help="GPU name from the table in fitting.data.gpus (H100, A100-80GB, L40S, MI300X, ...)")
    p.add_argument("--gpu-memory-gib", type=float, help="GPU memory in GiB as the driver reports it (overrides --gpu)")
    p.add_argument("--gpu-memory-utilization", "--mem-fraction-static", "--cuda-memory-fraction",
                   "--free-gpu-memory-fraction", type=float, dest="gpu_memory_utilization",
                   help="the fraction setting that sizes a preallocating engine's KV pool: vLLM "
                        "gpu_memory_utilization (default by version), SGLang mem_fraction_static (default: SGLang's "
                        "own rule for the GPU and tp), TGI cuda_memory_fraction (default 1.0; the pool fills it up to "
                        "TGI_WIGGLE_ROOM), TensorRT-LLM free_gpu_memory_fraction (default 0.9 of the memory left "
                        "after weights and activations)")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence of max batch / context / "
                                                                  "min utilization (default 0.95)")
    p.add_argument("--alpha", type=float, default=0.10, help="intervals are 1 - alpha (default 0.10: 90%%)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return p


def params_location(args) -> tuple[str, Path]:
    if args.params:
        return args.framework, Path(args.params)
    fw = args.framework or "vllm"
    for base in (Path.cwd() / "fitted_params", _REPO_PARAMS):
        if (base / fw).is_dir():
            return fw, base / fw
    raise FileNotFoundError(f"no coefficient files for {fw}: looked in ./fitted_params/{fw}/ and {_REPO_PARAMS / fw}/ "
                            "(run python -m fitting.refit, or pass --params)")


def json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        return json_safe(obj.item())
    return obj


def _fmt(v, nd=2):
    return "-" if v is None else f"{v:,.{nd}f}"


def _interval(lo, hi, nd=2):
    return "" if lo is None or hi is None else f"[{_fmt(lo, nd)}, {_fmt(hi, nd)}]"


def _overhead_label(r: dict, fitted: bool) -> str:
    if not fitted:
        return "overhead (seed-plan, unfitted)"
    lo = r.get("overhead_lower_gib")
    if lo is not None and lo < 0:
        # the only negative term: the fitted correction of the first-order activation estimate
        return "overhead (fitted, act. corr.)"
    return "overhead (fitted)"


def _kv_label(r: dict) -> str:
    s = r["settings"]
    if s.get("concurrency") is not None and "engine_start_probability" in r or (
            r.get("framework") in ("vllm", "sglang", "trtllm", "tgi") and s.get("concurrency") is not None):
        return f"KV ({s['concurrency']} x {s['input_len'] + s['output_len']:,} tok)"
    return "KV cache (workload)"


def _pool_lines(r: dict) -> list:
    """The answers a user of a preallocating engine needs (vLLM, SGLang)."""
    gpu = f"{r['gpu']} " if r.get("gpu") else ""
    knob = r.get("static_fraction_setting", "gpu_memory_utilization")
    vllm = r["framework"] == "vllm"
    conf = r["confidence"]
    p = r.get("engine_start_probability")
    starts = ("uncalibrated (seed-plan constants, not fitted)" if p is None
              else f"{'yes' if p >= conf else 'NO'} (P = {p:.3f})")
    mml = r["max_model_len"]
    w = r["workload"]
    holds = f"one {mml:,}-token sequence" if vllm else "at least one token"
    budget = r.get("pool_budget_fraction", r["gpu_memory_utilization"])
    label = "KV pool (" + POOL_LABEL.get(r["framework"], "tokens") + ")"
    lines = ["", f"on {gpu}{r['gpu_memory_gib']:g} GiB, {knob} {r['gpu_memory_utilization']:g}, "
                 f"confidence {conf:g}:",
             f"  {'engine starts':32s}{starts}   (non-KV fits in {budget:g} x "
             f"{r['gpu_memory_gib']:g} GiB and the pool holds {holds})",
             f"  {label:32s}"
             f"{r['kv_pool_tokens']:>12,d}   tokens "
             f"[{r['kv_pool_tokens_lower']:,d}, {r['kv_pool_tokens_upper']:,d}]",
             f"  {'max concurrency @ ' + format(mml, ',') + ' tok':32s}"
             f"{format(r['max_concurrency_at_max_model_len'], '.2f') + 'x':>12s}   "
             f"[{r['max_concurrency_at_max_model_len_lower']:.2f}x, {r['max_concurrency_at_max_model_len_upper']:.2f}x]"
             + (" (vLLM's 'Maximum concurrency')" if vllm else ""),
             f"  {'largest max_model_len to start' if vllm else 'longest request the pool holds':32s}{r['max_model_len_that_starts']:>12,d}   tokens"
             + (f" (memory allows {r['max_model_len_memory_allows']:,d})"
                if r["max_model_len_memory_allows"] > r["max_model_len_that_starts"] else ""),
             f"  {'min ' + knob + ' to start' if not vllm else 'min utilization to start':32s}"
             f"{'none <= 1' if r['min_gpu_memory_utilization_to_start'] is None else format(r['min_gpu_memory_utilization_to_start'], '.3f'):>12s}"]
    cold = r.get("first_start_cold_compile")
    if cold is not None:
        margin = (f", {cold['pool_loss_gib']:.2f} GiB less pool with the extensible cache's margin"
                  if cold["pool_loss_gib"] > cold["excess_upper_gib"] + 1e-9 else "")
        lines.append(f"  {'KV pool, first (cold) start':32s}{cold['kv_pool_tokens']:>12,d}   tokens if the empty "
                     f"torch.compile cache adds {cold['excess_upper_gib']:g} GiB (the most our profiles show; "
                     f"vllm#54122{margin}): keep ~/.cache/vllm between starts")
        pc = cold.get("engine_start_probability")
        if pc is not None and r.get("engine_start_probability") is not None \
                and (pc < conf) != (r["engine_start_probability"] < conf):
            lines.append(f"  {'first (cold) start':32s}{'NO' if pc < conf else 'yes':>12s}   (P = {pc:.3f}): "
                         "the compile excess may leave too little for one max_model_len sequence")
    res = r.get("sglang_reserve")
    if res is not None:
        parts = res["parts_gib"]
        mx = res["max_mem_fraction_static"]
        lines += [f"  {'reserve (1 - mfs) x G':32s}{res['reserve_gib']:>12.2f}   GiB for what SGLang allocates after "
                  "the pool",
                  f"  {'  needed after the pool':32s}{res['needed_gib']:>12.2f}   GiB "
                  f"[{res['needed_lower_gib']:.2f}, {res['needed_upper_gib']:.2f}]: attention set-up "
                  f"{parts['attention_setup']:.2f} ({res['attention_backend']}), decode CUDA graphs "
                  f"{parts['decode_cuda_graphs']:.2f} (max bs {res['cuda_graph_max_bs']}), piecewise prefill graphs "
                  f"{parts['piecewise_cuda_graphs']:.2f}, run-time peak {parts['runtime_peak']:.2f}",
                  f"  {'  max mfs that leaves it':32s}{'none' if mx is None else format(mx, '.3f'):>12s}"]
    if w["concurrency"] != 1 or w["tokens_per_request"] != mml:
        fp = w["fits_in_pool_probability"]
        lines += [f"  {'workload':32s}{w['concurrency']:,d} x {w['tokens_per_request']:,d} tokens: "
                  + ("uncalibrated" if fp is None else f"fits in the pool with P = {fp:.3f}"),
                  f"  {'max concurrency @ workload':32s}{r['max_batch_size']:>12,d}   requests of "
                  f"{w['tokens_per_request']:,d} tokens",
                  f"  {'min utilization for workload':32s}"
                  f"{'none <= 1' if r['min_gpu_memory_utilization'] is None else format(r['min_gpu_memory_utilization'], '.3f'):>12s}"]
    return lines


def format_table(r: dict) -> str:
    """Readable text of a :meth:`Estimator.query` result."""
    pct = f"{100 * (1 - r['alpha']):g}%"
    s = r["settings"]
    fitted = r["status"] == "fitted"
    errors = ("log-normal errors on activations + overhead, exact weights and KV" if r["error_mode"] == "log_uncertain_part"
              else f"{r['error_mode']} errors")
    state = "fitted" if fitted else "SEED-PLAN CONSTANTS, NOT FITTED"
    lines = [
        f"{r['model']} on {r['framework']}  (coefficients v{r['params_version']}, spec {r['spec']}, "
        f"{state}; {errors}; {pct} prediction intervals for a new model)",
        *r.get("model_source", {}).get("notes", ()),
        "settings: " + " ".join(f"{k}={'none' if v is None else (format(v, '.4g') if isinstance(v, float) else v)}"
                                for k, v in s.items()),
    ]
    if r["defaults_applied"]:
        lines.append("defaults: " + "; ".join(f"{k}={v}" for k, v in r["defaults_applied"].items()))
    lines += ["", f"  {'':32s}{'GiB per GPU':>12s}   {pct} interval"]
    rows = [("weights", r["weights_gib"], None, None),
            ("activations (physics)", r["activations_gib"], None, None),
            (_overhead_label(r, fitted), r["overhead_gib"], r["overhead_lower_gib"], r["overhead_upper_gib"]),
            ("non-KV = W + A + overhead", r["non_kv_gib"], r["non_kv_lower_gib"], r["non_kv_upper_gib"]),
            ("CUDA graphs", r["cuda_graph_gib"], r["cuda_graph_lower_gib"], r["cuda_graph_upper_gib"]),
            (_kv_label(r), r["kv_cache_gib"], None, None),
            ("total", r["total_gib"], r["total_lower_gib"], r["total_upper_gib"])]
    for name, v, lo, hi in rows:
        if name == "CUDA graphs" and v is None:
            lines.append(f"  {name:32s}{'not modelled':>12s}")
            continue
        lines.append(f"  {name:32s}{_fmt(v):>12s}   {_interval(lo, hi)}")
    lines.append(f"  {'total, all ' + str(r['n_gpus']) + ' GPUs':32s}{_fmt(r['total_all_gpus_gib']):>12s}   "
                 f"{_interval(r['total_all_gpus_lower_gib'], r['total_all_gpus_upper_gib'])}")
    lines.append(f"  KV bytes per token per GPU: {r['kv_bytes_per_token']:,.0f}")
    if "engine_start_probability" in r:
        lines += _pool_lines(r)
    elif "fit_probability" in r:
        gpu = f"{r['gpu']} " if r.get("gpu") else ""
        util = f", gpu_memory_utilization {r['gpu_memory_utilization']:g}" if "gpu_memory_utilization" in r else ""
        lines += ["", f"on {gpu}{r['gpu_memory_gib']:g} GiB{util}, confidence {r['confidence']:g}:",
                  (f"  {'probability it fits':32s}{r['fit_probability']:>12.3f}" if r.get("fit_probability") is not None
                   else f"  {'probability it fits':32s}{'uncalibrated':>12s}   (seed-plan constants, not fitted)"),
                  *([f"  {'+ non-torch memory (GiB)':32s}{r['non_torch_gib']:>12.2f}   CUDA context etc., outside "
                     "the allocated peak above; included in these answers"] if r.get("non_torch_gib") else []),
                  f"  {'max batch size':32s}{r['max_batch_size']:>12,d}",
                  f"  {'max context length':32s}{r['max_context_len']:>12,d}   tokens per sequence"]
        if "kv_pool_tokens" in r:
            lines.append(f"  {'KV pool':32s}{r['kv_pool_tokens']:>12,d}   tokens "
                         f"[{r['kv_pool_tokens_lower']:,d}, {r['kv_pool_tokens_upper']:,d}]")
            mu = r["min_gpu_memory_utilization"]
            lines.append(f"  {'min gpu_memory_utilization':32s}{'none <= 1' if mu is None else f'{mu:.3f}':>12s}")
    if r["warnings"]:
        lines += ["", "warnings:"] + [f"  - {w}" for w in r["warnings"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input)."""
    args = _parser().parse_args(argv)
    try:
        if args.model and args.config:
            raise ValueError("give --model or --config, not both")
        if args.config and not Path(args.config).exists():
            raise ValueError(f"--config {args.config}: no such file or directory")
        model_arg = args.config or args.model
        if not model_arg:
            raise ValueError("give --model (registry id, alias, local path or Hub id) or --config (config.json path)")
        for flag in ("input_len", "output_len", "max_model_len", "max_num_batched_tokens", "batch_size",
                 "max_num_seqs", "concurrency"):
            v = getattr(args, flag)
            if v is not None and v < 0:
                raise ValueError(f"--{flag.replace('_', '-')} must not be negative, got {v}")

        framework, location = params_location(args)
        est = Estimator.load(location)
        if framework and est.framework != framework:
            raise ValueError(f"--framework {framework} but {est.path} holds coefficients for {est.framework}")
        pool = est.kv_cache_mode == "pool"
        if args.max_num_seqs is not None and args.batch_size is not None and args.max_num_seqs != args.batch_size:
            raise ValueError("give --max-num-seqs or --batch-size, not both (for vLLM they are the same setting)")
        if (args.max_num_seqs is not None or args.concurrency is not None) and not pool:
            raise ValueError(f"--max-num-seqs and --concurrency apply to engines with a KV pool; for "
                             f"{est.framework} give --batch-size")
        if (args.vllm_version or args.enforce_eager or args.interconnect) and est.framework != "vllm":
            raise ValueError(f"--vllm-version, --enforce-eager and --interconnect apply to vLLM, not {est.framework}")
        # the model source chain: registry, local path, Hugging Face Hub
        model = resolve_any(model_arg, offline=True if args.offline else None, revision=args.revision)
        if args.transformers_version and est.framework != "transformers":
            raise ValueError(f"--transformers-version applies to transformers, not {est.framework}")
        extra = {}
        if args.transformers_version:
            extra = dict(framework_version=args.transformers_version)
        if args.tgi_version and est.framework != "tgi":
            raise ValueError(f"--tgi-version applies to tgi, not {est.framework}")
        if pool:
            extra = dict(concurrency=args.concurrency, enforce_eager=args.enforce_eager or None,
                         framework_version=args.vllm_version or args.tgi_version, interconnect=args.interconnect)
        result = est.query(
            model.entry, tp=args.tp, pp=args.pp, batch_size=args.max_num_seqs if args.max_num_seqs is not None
            else args.batch_size, input_len=args.input_len, **extra,
            output_len=args.output_len, max_model_len=args.max_model_len,
            max_num_batched_tokens=args.max_num_batched_tokens, dtype=args.dtype, quantization=args.quantization,
            kv_cache_dtype=args.kv_cache_dtype, gpu=args.gpu, gpu_memory_gib=args.gpu_memory_gib,
            gpu_memory_utilization=args.gpu_memory_utilization, confidence=args.confidence, alpha=args.alpha)
    except (ValueError, KeyError, LookupError, OSError, ModelSourceError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"error: {' '.join(str(msg).split())}", file=sys.stderr)
        return EXIT_BAD_INPUT
    result["model_source"] = {"source": model.source, "location": model.location, "revision": model.revision,
                              "unmodelled_weight_bytes": dict(model.unmodelled_bytes),
                              "notes": model.describe(tp=args.tp, pp=args.pp, dtype=args.dtype,
                                                      quantization=args.quantization,
                                                      embedding_on_gpu=est.framework != "llamacpp",
                                                      towers_on_gpu=est.framework != "llamacpp")}
    result = json_safe(result)
    if args.json:
        print(json.dumps(result, indent=2, allow_nan=False))
    else:
        print(format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
