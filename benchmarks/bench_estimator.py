"""Benchmarks of the estimator (figures to read, not timed unit tests).

    python benchmarks/bench_estimator.py            # all three
    python benchmarks/bench_estimator.py --only vectorised --n 1000000

1. **vectorised**: one ``Estimator.predict`` call over ``--n`` configurations (10**6 by
   default: random tp, batch size, input and output lengths of one model) returned as a
   DataFrame, against the same predictions made one call at a time (a sample of single
   calls is timed and extrapolated). Target: >= 1e6 configurations/s vectorised.
2. **cold start**: wall time of ``python -m fitting.estimate ... --json`` (with a GPU, so
   the inverse queries run too) against ``python -c "import numpy"``, medians of
   interleaved runs. Target: under 3x.
3. **refit**: the per-framework fit of ``python -m fitting.refit`` (every candidate spec,
   outlier screening, CUDA-graph term; with and without leave-one-model-out CV; no
   bootstrap) on 10**4 SIMULATED profiles. Target: <= 10 s. See ``refit_hook``.

The coefficient file is ``fitted_params/vllm/latest.json`` when it exists, otherwise a
SIMULATED one (tests/_simulated_coefficients.py). Timings depend on the machine and its
load: the script prints the CPU it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the SIMULATED coefficient builder

MODEL = "meta-llama/Llama-3.1-8B"
CLI_ARGS = ["--model", MODEL, "--tp", "2", "--batch-size", "32", "--input-len", "4096", "--output-len", "512",
            "--gpu", "H100", "--json"]


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} logical CPUs"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs"


def _params_dir(tmp: Path) -> tuple[Path, str]:
    real = ROOT / "fitted_params" / "vllm"
    if (real / "latest.json").is_file():
        return real, "fitted_params/vllm/latest.json (real)"
    from _simulated_coefficients import simulate, write

    return write(simulate("vllm", seed=0), tmp), "SIMULATED vllm coefficients (no fitted_params/vllm yet)"


def bench_vectorised(params: Path, n: int, n_single: int, repeats: int = 3) -> dict:
    from fitting.estimator import Estimator

    est = Estimator.load(params)
    rng = np.random.default_rng(0)
    tp = rng.choice([1, 2, 4, 8], n)
    b = rng.integers(1, 257, n)
    il, ol = rng.integers(1, 16384, n), rng.integers(0, 2048, n)
    est.predict(MODEL, tp=tp[:100], batch_size=b[:100], input_len=il[:100], output_len=ol[:100])  # warm caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        frame = est.predict(MODEL, tp=tp, batch_size=b, input_len=il, output_len=ol)
        times.append(time.perf_counter() - t0)
    assert len(frame) == n
    t_vec = min(times)
    t0 = time.perf_counter()
    for i in range(n_single):
        est.predict(MODEL, tp=int(tp[i]), batch_size=int(b[i]), input_len=int(il[i]), output_len=int(ol[i]))
    t_one = (time.perf_counter() - t0) / n_single
    return {"n": n, "vectorised_s": t_vec, "vectorised_per_s": n / t_vec, "single_call_s": t_one,
            "single_extrapolated_s": t_one * n, "ratio": t_one * n / t_vec, "repeats": times}


def _wall(cmd, env) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, cwd=ROOT)
    return time.perf_counter() - t0


def bench_cold_start(params: Path, runs: int) -> dict:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="0")
    numpy_cmd = [sys.executable, "-c", "import numpy"]
    cli_cmd = [sys.executable, "-m", "fitting.estimate", "--params", str(params), *CLI_ARGS]
    _wall(numpy_cmd, env), _wall(cli_cmd, env)  # byte-compile, warm the file cache
    help_cmd = [sys.executable, "-m", "fitting.estimate", "--help"]
    _wall(help_cmd, env)
    t_np, t_cli, t_help = [], [], []
    for _ in range(runs):  # interleaved, so machine load hits both alike
        t_np.append(_wall(numpy_cmd, env))
        t_cli.append(_wall(cli_cmd, env))
        t_help.append(_wall(help_cmd, env))
    # where the CLI's time goes (in a fresh process)
    probe = (
        "import time; t0=time.perf_counter(); import numpy; t1=time.perf_counter();"
        "import fitting.estimator, fitting.data.registry, fitting.physics.memory, fitting.estimate; t2=time.perf_counter();"
        "fitting.data.registry.load_registry(); t3=time.perf_counter();"
        f"e=fitting.estimator.Estimator.load({str(params)!r}); t4=time.perf_counter();"
        f"e.query({MODEL!r}, tp=2, batch_size=32, input_len=4096, output_len=512, gpu='H100'); t5=time.perf_counter();"
        "print(t1-t0, t2-t1, t3-t2, t4-t3, t5-t4)"
    )
    parts = [subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT)
             .stdout.split() for _ in range(3)]
    med = [statistics.median(float(p[i]) for p in parts) for i in range(5)]
    cli = statistics.median(t_cli)
    return {"numpy_s": statistics.median(t_np), "cli_s": cli,
            "ratio": cli / statistics.median(t_np), "help_s": statistics.median(t_help),
            "help_ratio": statistics.median(t_help) / statistics.median(t_np),
            "breakdown_s": dict(zip(("import numpy", "import fitting (estimator, physics, registry)",
                                     "registry YAML load", "coefficient file load + validation",
                                     "prediction + inverse queries"), med))}


# ------------------------------------------------------------------------------ refit
def _simulated_observations(n: int, seed: int = 0):
    """n SIMULATED vLLM profiles as a :class:`fitting.overhead.observations.Observations`: physics
    features of real architectures, a known overhead (physical spec) with log-normal noise,
    and a CUDA-graph response."""
    import pandas as pd

    from fitting.overhead.observations import Observations, size_class
    from fitting.overhead.specs import CUDA_GRAPH, build_features, get_spec
    from fitting.data.registry import resolve_model

    rng = np.random.default_rng(seed)
    models = ["Qwen/Qwen2.5-0.5B", "meta-llama/Llama-3.2-1B", "Qwen/Qwen2.5-7B", "meta-llama/Llama-3.1-8B",
              "Qwen/Qwen2.5-14B", "Qwen/Qwen2.5-32B", "meta-llama/Llama-3.1-70B"]
    per = n // (len(models) * 4) + 1
    parts, rows = [], []
    for m in models:
        entry = resolve_model(m)
        params_b = (entry.params_total or 0) / 1e9
        for tp in (1, 2, 4, 8):
            parts.append(build_features(entry.architecture, framework="vllm", tp=tp,
                                        batch_size=rng.choice([1, 8, 64, 256], per),
                                        input_len=rng.integers(1, 8192, per), output_len=0))
            rows += [(m, params_b, tp)] * per
    feats = {k: np.concatenate([np.broadcast_to(p[k], (per,)) for p in parts])[:n] for k in parts[0]}
    y = np.asarray(get_spec("physical").predict_response(feats, [0.45, 1.1, 0.25, 0.0, 1.0]), float)
    y = y * np.exp(0.05 * rng.standard_normal(n))
    y_cg = np.asarray(CUDA_GRAPH.predict_response(feats, [0.15, 0.004]), float) * np.exp(0.1 * rng.standard_normal(n))
    m, pb, tp = (np.array(c) for c in zip(*rows[:n]))
    table = pd.DataFrame({"profile_id": [f"sim-{i:05d}" for i in range(n)], "model_id": m, "model_key": m,
                          "params_b": pb, "is_moe": False, "size_class": [size_class(p, False) for p in pb],
                          "y_gib": y, "tp": tp, "pp": 1, "series": None, "cuda_graph_gib": y_cg,
                          "batch_defaulted": False})
    return Observations(framework="vllm", kv_cache_mode="pool",
                        observed_quantity={"name": "non_kv_gib", "description": "SIMULATED"},
                        table=table, features=feats, n_total=n)


def refit_hook(obs, cv: bool):
    """### REFIT HOOK ###  The per-framework fitting work of ``python -m fitting.refit``.

    Today: :func:`fitting.overhead.fit.fit_framework` (every candidate spec, outlier
    screening, the CUDA-graph term, and with ``cv`` leave-one-model-out cross-validation;
    no bootstrap). Point this at the refit's entry point if it changes.
    """
    from fitting.overhead.fit import fit_framework

    return fit_framework(obs, cv=cv)


def bench_refit(n: int) -> dict:
    obs = _simulated_observations(n)
    refit_hook(obs.subset(np.arange(300)), cv=False)  # imports, warm-up
    out = {"n": n}
    for cv in (False, True):
        t0 = time.perf_counter()
        fit = refit_hook(obs, cv=cv)
        out["cv" if cv else "no_cv"] = time.perf_counter() - t0
    out["status"] = {k: f.status for k, f in fit.specs.items()}
    out["selected"] = fit.selected_spec
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=("vectorised", "cold-start", "refit"), help="run one benchmark")
    ap.add_argument("--n", type=int, default=10**6, help="configurations of the vectorised call (default 1e6)")
    ap.add_argument("--single", type=int, default=2000, help="single calls timed to extrapolate (default 2000)")
    ap.add_argument("--runs", type=int, default=9, help="cold-start runs of each command (default 9)")
    ap.add_argument("--profiles", type=int, default=10**4, help="simulated profiles to refit (default 1e4)")
    args = ap.parse_args(argv)
    print(f"machine: {_cpu()}; python {platform.python_version()}, numpy {np.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        params, label = _params_dir(Path(tmp))
        print(f"coefficients: {label}")
        if args.only in (None, "vectorised"):
            r = bench_vectorised(params, args.n, args.single)
            print(f"[vectorised] {r['n']:,} configurations in one call: {r['vectorised_s']:.3f} s "
                  f"= {r['vectorised_per_s']:,.0f} configurations/s (best of {len(r['repeats'])}: "
                  f"{', '.join(f'{t:.3f}' for t in r['repeats'])} s; target >= 1,000,000/s)")
            print(f"[vectorised] one at a time: {1e3 * r['single_call_s']:.3f} ms per call "
                  f"({args.single} timed) -> {r['single_extrapolated_s']:,.0f} s for {r['n']:,}; "
                  f"vectorised is {r['ratio']:,.0f}x faster")
        if args.only in (None, "cold-start"):
            r = bench_cold_start(params, args.runs)
            print(f"[cold start] python -m fitting.estimate ... --json: {r['cli_s']:.3f} s; "
                  f"python -c 'import numpy': {r['numpy_s']:.3f} s; ratio {r['ratio']:.2f}x "
                  f"(medians of {args.runs}; target < 3x)")
            print(f"[cold start] python -m fitting.estimate --help: {r['help_s']:.3f} s; ratio {r['help_ratio']:.2f}x "
                  "import numpy (target < 3x)")
            for k, v in r["breakdown_s"].items():
                print(f"[cold start]   {k}: {v:.3f} s")
        if args.only in (None, "refit"):
            r = bench_refit(args.profiles)
            print(f"[refit] {r['n']:,} SIMULATED vLLM profiles, fit_framework (specs "
                  f"{', '.join(r['status'])} + CUDA-graph term, no bootstrap): {r['no_cv']:.2f} s without "
                  f"cross-validation, {r['cv']:.2f} s with leave-one-model-out CV (target <= 10 s); "
                  f"selected {r['selected']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
