"""``python -m fitting.plan``: which GPUs, and how many, for a model and a workload, with probabilities.

For every GPU of the table (:mod:`fitting.data.gpus`) and every tensor-parallel degree that
the model's heads allow, the estimator answers the questions of a preallocating engine
(vLLM by default): the probability that the engine starts with the requested context, the
KV pool in tokens, the concurrency it allows, and whether the stated workload (concurrency
x tokens per request) fits in the pool. Candidates are ranked by GPUs used, then by
headroom (``gpu_memory_utilization x G`` minus non-KV, the CUDA graphs where vLLM 0.20+
counts them in the budget, and the workload's KV, GiB per GPU, at the lower end of the
interval). Every figure comes from
:meth:`fitting.estimator.Estimator.query`, the same answer ``fitting.estimate`` prints.

Examples
--------
python -m fitting.plan --model meta-llama/Llama-3.1-70B-Instruct --context 32768 --concurrency 16
python -m fitting.plan --model Qwen/Qwen3-8B --gpus H100-80GB L40S L4 --json
"""

from __future__ import annotations

import argparse
import json
import sys

from fitting.data.gpus import GPUS
from fitting.data.model_source import ModelSourceError, resolve_any
from fitting.estimate import json_safe, params_location
from fitting.estimator import CoefficientFileError, Estimator

EXIT_BAD_INPUT = 2
#: Tensor-parallel degrees tried.
TP_CHOICES = (1, 2, 4, 8)


def plan(est: Estimator, model, *, gpus=None, vendors=("NVIDIA",), tps=TP_CHOICES, context=None, concurrency=1, input_len=None,
         output_len=None, confidence=0.95, gpu_memory_utilization=None, quantization=None, kv_cache_dtype=None,
         dtype=None, framework_version=None) -> list[dict]:
    """Every GPU x tp candidate with its answers, ranked (best first).

    Parameters
    ----------
    est : Estimator
        A framework with a KV pool (vLLM, SGLang, TensorRT-LLM, TGI).
    model : str, ModelEntry or ResolvedModel
        Registry id or alias, config.json path, or a model of the source chain
        (:func:`fitting.data.model_source.resolve_any`).
    vendors : sequence of str or None, optional
        Without ``gpus``: the vendors whose GPUs are tried (default NVIDIA: every profile the
        fits have seen ran on NVIDIA GPUs; None tries every GPU of the table).
    gpus : sequence of str, optional
        Names from the GPU table (default: all of them).
    tps : sequence of int
        Tensor-parallel degrees to try (those that do not divide the heads are skipped).
    context : int, optional
        ``max_model_len`` (default: the model's).
    concurrency : int
        Requests at once in the workload.
    input_len, output_len : int, optional
        Tokens per request (default: each request fills the context).
    confidence : float
        A candidate qualifies when both the engine start and the workload fit at this level
        (an unfitted engine, without calibrated probabilities: when the upper end of its
        non-KV interval and the workload's KV fit in the budget, ``qualifies_by`` says which);
        SGLang's also need the reserve after the pool to hold what it allocates there
        (``reserve_holds``).

    Returns
    -------
    list of dict
        ``gpu, tp, n_gpus, gpu_memory_gib, starts_probability, workload_fit_probability,
        qualifies, qualifies_by, reserve_holds, kv_pool_tokens (+ _lower/_upper), max_concurrency_at_context,
        max_concurrency_at_workload, non_kv_gib (+ bounds), per_gpu_gib, total_gib,
        headroom_gib`` (GiB per GPU unless named), ``error`` where the candidate is invalid.
    """
    if est.kv_cache_mode != "pool":
        raise ValueError(f"plan answers for engines with a KV pool (vLLM, SGLang, TRT-LLM, TGI); "
                         f"{est.framework} grows its KV cache per request")
    names = list(gpus) if gpus else [n for n, g in GPUS.items() if vendors is None or g.vendor in vendors]
    rows = []
    for name in names:
        for tp in tps:
            kw = dict(tp=tp, concurrency=concurrency, input_len=input_len, output_len=output_len,
                      max_model_len=context, quantization=quantization, kv_cache_dtype=kv_cache_dtype, dtype=dtype)
            if est.framework == "vllm" and framework_version:
                kw["framework_version"] = framework_version
            if input_len is None and output_len is None:
                kw.pop("input_len"), kw.pop("output_len")
            try:
                r = est.query(model, gpu=name, confidence=confidence, gpu_memory_utilization=gpu_memory_utilization,
                              **kw)
            except ValueError as exc:
                if "does not divide" in str(exc) or "one must divide the other" in str(exc):
                    continue  # this tp does not shard the model's heads
                raise
            rows.append(_row(name, tp, r, confidence))
    return sorted(rows, key=_rank)


def _row(name, tp, r, confidence):
    u = r.get("gpu_memory_utilization", 1.0)
    g = r["gpu_memory_gib"]
    kv = r["kv_cache_gib"] or 0.0
    # vLLM 0.20+ sizes its pool after subtracting the CUDA graphs: they use the same budget
    graphs = (r.get("cuda_graph_upper_gib") or 0.0) if r.get("cuda_graph_in_budget") else 0.0
    headroom = u * g - r["non_kv_upper_gib"] - graphs - kv
    p_start = r.get("engine_start_probability")
    p_work = r["workload"]["fits_in_pool_probability"] if "workload" in r else r.get("fit_probability")
    reserve = r.get("sglang_reserve")
    reserve_ok = reserve is None or reserve["needed_upper_gib"] <= reserve["reserve_gib"]
    if p_start is not None and p_work is not None:
        qualifies, basis = p_start >= confidence and p_work >= confidence and reserve_ok, "probability"
    else:
        # an unfitted engine has no calibrated probability: its candidates qualify on the upper end
        # of the seed plan's deliberately wide interval (the workload's KV beside it), and say so
        qualifies, basis = headroom >= 0 and reserve_ok, "uncalibrated upper bound"
    return {"gpu": r.get("gpu", name), "tp": tp, "n_gpus": int(r["n_gpus"]), "gpu_memory_gib": g,
            "gpu_memory_utilization": u, "starts_probability": p_start, "workload_fit_probability": p_work,
            "qualifies": bool(qualifies), "qualifies_by": basis, "reserve_holds": bool(reserve_ok),
            "kv_pool_tokens": r.get("kv_pool_tokens"),
            "kv_pool_tokens_lower": r.get("kv_pool_tokens_lower"), "kv_pool_tokens_upper": r.get("kv_pool_tokens_upper"),
            "context": r.get("max_model_len"), "max_concurrency_at_context": r.get("max_concurrency_at_max_model_len"),
            "max_concurrency_at_workload": r.get("max_batch_size"),
            "tokens_per_request": (r.get("workload") or {}).get("tokens_per_request"),
            "non_kv_gib": r["non_kv_gib"], "non_kv_lower_gib": r["non_kv_lower_gib"],
            "non_kv_upper_gib": r["non_kv_upper_gib"], "workload_kv_gib": kv,
            "per_gpu_gib": u * g, "total_gib": u * g * int(r["n_gpus"]), "headroom_gib": headroom,
            "status": r.get("status"), "warnings": r.get("warnings", [])}


def _rank(row):
    # qualifying first; then fewer GPUs; then more headroom per GPU; then the smaller card
    return (not row["qualifies"], row["n_gpus"], -row["headroom_gib"], row["gpu_memory_gib"], row["gpu"])


def format_plan(rows, *, model, framework, limit=15) -> str:
    """Readable table of :func:`plan` rows (GiB per GPU unless named)."""
    head = (f"{'rank':>4s}  {'GPU':14s}{'tp':>3s}  {'P(start)':>8s}  {'P(work)':>8s}  {'KV pool tok':>12s}  "
            f"{'conc@ctx':>8s}  {'conc@work':>9s}  {'non-KV GiB':>18s}  {'headroom':>8s}  {'total GiB':>9s}")
    lines = [f"{model} on {framework}: GPU x tp candidates, ranked by GPUs used, then headroom (GiB per GPU; "
             "P = probability from the 90%-calibrated error model; conc = requests the KV pool holds)", "", head]
    for i, r in enumerate(rows[:limit], 1):
        ps = "  n/a" if r["starts_probability"] is None else f"{r['starts_probability']:.3f}"
        pw = "  n/a" if r["workload_fit_probability"] is None else f"{r['workload_fit_probability']:.3f}"
        mark = ("  (does not qualify" + ("" if r["reserve_holds"] else ": the reserve after the pool is too small")
                + ")") if not r["qualifies"] else ("  (uncalibrated: by the upper bound)"
                                                   if r["qualifies_by"] != "probability" else "")
        lines.append(f"{i:>4d}  {r['gpu']:14s}{r['tp']:>3d}  {ps:>8s}  {pw:>8s}  {r['kv_pool_tokens']:>12,d}  "
                     f"{r['max_concurrency_at_context']:>7.2f}x  {r['max_concurrency_at_workload']:>9,d}  "
                     f"{r['non_kv_gib']:>6.2f} [{r['non_kv_lower_gib']:.1f},{r['non_kv_upper_gib']:.1f}]  "
                     f"{r['headroom_gib']:>8.2f}  {r['total_gib']:>9.1f}{mark}")
    if len(rows) > limit:
        lines.append(f"      ... {len(rows) - limit} more (--limit, or --json for all)")
    if any(r.get("qualifies_by") == "uncalibrated upper bound" for r in rows):
        lines.append(f"      ({framework} is unfitted: no calibrated probability; a candidate qualifies when the upper end "
                     "of the seed plan's deliberately wide non-KV interval and the workload's KV fit)")
    return "\n".join(lines) + "\n"


def _parser():
    p = argparse.ArgumentParser(prog="python -m fitting.plan",
                                description="Rank GPU x tensor-parallel choices for a model and a workload: "
                                            "probability the engine starts, KV pool (tokens), concurrency, memory "
                                            "(GiB per GPU and in total).")
    p.add_argument("--model", required=True, help="model id or path: the curated registry, a local checkpoint "
                                                  "folder or config.json, else the Hugging Face Hub (config and "
                                                  "safetensors metadata only; cached)")
    p.add_argument("--offline", action="store_true", help="never use the network (registry, local paths and "
                                                          "huggingface_hub's cache only)")
    p.add_argument("--framework", default="vllm", help="an engine with a KV pool (default vllm)")
    p.add_argument("--params", help="coefficient file or folder (default: fitted_params/<framework>/)")
    p.add_argument("--gpus", nargs="+", help="GPU names from fitting.data.gpus (default: every GPU of --vendor)")
    p.add_argument("--vendor", default="NVIDIA",
                   help="without --gpus: the GPU vendor to try, NVIDIA (default: every profile the fits have seen "
                        "ran on NVIDIA GPUs) or 'all' (adds AMD and others, whose ROCm builds the fits have not seen)")
    p.add_argument("--tp", nargs="+", type=int, default=list(TP_CHOICES), help="tensor-parallel degrees to try")
    p.add_argument("--context", type=int, help="max_model_len in tokens (default: the model's)")
    p.add_argument("--concurrency", type=int, default=1, help="requests at once (default 1)")
    p.add_argument("--input-len", type=int, help="prompt tokens per request (default: requests fill the context)")
    p.add_argument("--output-len", type=int, help="generated tokens per request")
    p.add_argument("--quantization", help="weight format, e.g. fp8, awq (default: the checkpoint's)")
    p.add_argument("--kv-cache-dtype", help="auto or fp8 (default auto)")
    p.add_argument("--dtype", help="activation dtype (default from the model)")
    p.add_argument("--vllm-version", help="vLLM version whose defaults apply (default: the newest known)")
    p.add_argument("--gpu-memory-utilization", type=float, help="vLLM fraction (default 0.9)")
    p.add_argument("--confidence", type=float, default=0.95, help="level a candidate must reach (default 0.95)")
    p.add_argument("--limit", type=int, default=15, help="rows printed (default 15)")
    p.add_argument("--json", action="store_true", help="print every candidate as JSON")
    return p


def main(argv=None) -> int:
    """Run the planner; returns the exit status (0 ok, 2 bad input)."""
    args = _parser().parse_args(argv)
    try:
        if args.concurrency < 1:
            raise ValueError(f"--concurrency must be at least 1, got {args.concurrency}")
        if not 0.0 < args.confidence < 1.0:
            raise ValueError(f"--confidence must lie in (0, 1), got {args.confidence}")
        framework, location = params_location(args)
        est = Estimator.from_file(location)
        resolved = resolve_any(args.model, offline=True if args.offline else None)
        vendors = None if args.vendor.lower() == "all" else (args.vendor.upper() if args.vendor.lower() in (
            "nvidia", "amd") else args.vendor,)
        if vendors is not None and not any(g.vendor in vendors for g in GPUS.values()):
            raise ValueError(f"--vendor {args.vendor!r}: no GPU of that vendor in the table; expected one of "
                             f"{sorted({g.vendor for g in GPUS.values()})} or 'all'")
        rows = plan(est, resolved.entry, gpus=args.gpus, vendors=vendors, tps=tuple(args.tp), context=args.context,
                    concurrency=args.concurrency, input_len=args.input_len, output_len=args.output_len,
                    confidence=args.confidence, gpu_memory_utilization=args.gpu_memory_utilization,
                    quantization=args.quantization, kv_cache_dtype=args.kv_cache_dtype, dtype=args.dtype,
                    framework_version=args.vllm_version)
    except (ValueError, KeyError, LookupError, OSError, CoefficientFileError, ModelSourceError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        json.dump(json_safe({"model": args.model, "framework": est.framework,
                             "model_source": {"source": resolved.source, "location": resolved.location,
                                              "revision": resolved.revision, "notes": resolved.describe()},
                             "candidates": rows}), sys.stdout,
                  indent=1, allow_nan=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n".join(resolved.describe()) + "\n")
        if not args.gpus and vendors is not None:
            sys.stdout.write(f"GPUs tried: the {'/'.join(vendors)} GPUs of the table (the fits have seen NVIDIA "
                             f"runs only; --vendor all adds the others)\n")
        sys.stdout.write(format_plan(rows, model=args.model, framework=est.framework, limit=args.limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
