"""Shared inputs of the validation, baseline, dashboard and notebook tests.

``committed_inputs`` gives the committed profiles and coefficient files (real data). Where
the checkout has no coefficient files yet, the refit writes them into a temporary folder
first, so that the tests run either way. ``simulated_inputs`` writes SIMULATED vLLM
profiles (labelled as such, from known coefficients) and refits them: tests only.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "profiles"
PARAMS = ROOT / "fitted_params"

#: Registry models used for SIMULATED profile files (one per size class where possible).
SIM_MODELS = ("Qwen/Qwen2.5-1.5B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen2.5-14B-Instruct",
              "meta-llama/Llama-3.1-70B-Instruct")


def committed_inputs(tmp_dir) -> tuple[Path, Path]:
    """(profiles dir, coefficient dir) of the committed data; refit into ``tmp_dir`` if needed."""
    if any(PARAMS.glob("*/latest.json")):
        return PROFILES, PARAMS
    from fitting.refit import refit

    out = Path(tmp_dir) / "fitted_params"
    refit(PROFILES, out_dir=out, write_reports=False)
    return PROFILES, out


def simulated_inputs(tmp_dir, *, sigma_log=0.01, n_per_model=8, seed=0) -> tuple[Path, Path]:
    """SIMULATED vLLM profiles (seed spec, known coefficients) and their refit."""
    from fitting.refit import refit
    from tests._sim_profiles import write_simulated_profiles

    tmp_dir = Path(tmp_dir)
    prof = tmp_dir / "profiles"
    write_simulated_profiles(prof, "vllm", models=SIM_MODELS, sigma_log=sigma_log, n_per_model=n_per_model,
                             seed=seed)
    params = tmp_dir / "fitted_params"
    refit(prof, out_dir=params, frameworks=["vllm"], write_reports=False)
    return prof, params
