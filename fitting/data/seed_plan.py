"""The seed plan's own four vLLM measurements as profiles (provenance kind ``seed-plan``).

The plan that started this project quoted four vLLM memory totals without saying how
they were measured, at which ``gpu_memory_utilization``, on which GPU, or whether its
"GB" is 10**9 or 2**30 bytes. They are kept as profiles so that the validation report
can show them next to the predictions, each with the most likely explanation of the
figure, and excluded from fits (``use_in_fit: false``).

``python -m fitting.seed_plan [--out profiles/seed-plan]`` writes
``<out>/vllm/<profile_id>.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fitting.data.profiles import validate_profile, write_profile

_REF = "seed plan (project brief), quoted in issue 5 of llm-sizer-fit, item 4"
_CAVEAT = ("Seed-plan figure: the measurement method (nvidia-smi, torch peak, ...), the GPU, "
           "gpu_memory_utilization and whether 'GB' means 10**9 or 2**30 bytes were not recorded; "
           "recorded as printed in peak_total_gb (base unknown).")
_POOL = ("vLLM preallocates its KV pool from gpu_memory_utilization, so a whole-GPU reading of a vLLM "
         "start shows that fraction of the GPU whatever the model needs")

#: (profile id, model id, name as given, extra sections, figure in GB, evidence, most likely explanation)
_MEASUREMENTS = (
    ("seed-plan-vllm-llama-3.2-1b-fp8kv-bs1", "meta-llama/Llama-3.2-1B", "Llama-3.2-1B",
     {"precision": {"kv_cache_dtype": "fp8"}, "workload": {"batch_size": 1, "input_len": 512, "output_len": 512}},
     18.94, "Llama-3.2-1B (FP8 KV, 512 in / 512 out, batch 1) 18.94 GB total",
     f"Most likely a whole-GPU reading: {_POOL}. Llama-3.2-1B's bf16 weights are about 2.5 GB (1.23B "
     "parameters) and its fp8 KV cache for 1024 tokens of one sequence about 0.02 GB (16 layers x 8 KV "
     "heads x 64 x 2 x 1 B = 16 KiB per token), so 18.94 GB is not the model's need."),
    ("seed-plan-vllm-mistral-7b-instruct-v0.2-bs1", "mistralai/Mistral-7B-Instruct-v0.2",
     "Mistral-7B-Instruct-v0.2", {"workload": {"batch_size": 1}, "series": "seed-plan-mistral-7b-batch"},
     20.28, "Mistral-7B-Instruct-v0.2 batch 1 20.28 GB",
     f"Most likely a whole-GPU reading: {_POOL}. The bf16 weights are about 14.5 GB (7.24B parameters); "
     "the rest is the KV pool and overhead that vLLM reserved, not what batch 1 needed."),
    ("seed-plan-vllm-mistral-7b-instruct-v0.2-bs8", "mistralai/Mistral-7B-Instruct-v0.2",
     "Mistral-7B-Instruct-v0.2", {"workload": {"batch_size": 8}, "series": "seed-plan-mistral-7b-batch"},
     41.27, "Mistral-7B-Instruct-v0.2 batch 8 41.27 GB",
     "Most likely a different GPU or gpu_memory_utilization between the batch-1 and batch-8 runs: "
     f"{_POOL}, so batch size does not move the total. bf16 KV is 128 KiB per token (32 layers x 8 KV "
     "heads x 128 x 2 x 2 B): 8 sequences of a few thousand tokens add a few GB, not the 21 GB between "
     "20.28 and 41.27 GB."),
    ("seed-plan-vllm-glm-4.5-tp4", "zai-org/GLM-4.5", "GLM-4.5",
     {"parallel": {"tp": 4}},
     125.0, "GLM-4.5 at TP=4 125 GB (the plan's label)",
     "Which checkpoint and dtype ran is not recorded, nor whether 125 GB is per GPU or in total. A bf16 "
     "GLM-4.5 cannot fit in 125 GB: its 355B parameters take about 710 GB in bf16 (about 178 GB per GPU "
     "at tp=4), and even FP8 needs about 355 GB (about 89 GB per GPU). Most likely explanations: a "
     f"per-GPU whole-GPU reading of an FP8 run ({_POOL}; e.g. 0.9 x 141 GB H200 = 127 GB), or the "
     "GLM-4.5-Air checkpoint (106B parameters, about 106 GB in FP8)."),
)


def seed_plan_profiles():
    """The four seed-plan profiles as schema-v1 dicts (validated).

    Returns
    -------
    list of dict
        ``peak_total_gb`` holds the plan's figure in its own "GB" (base unknown).
    """
    profiles = []
    for pid, model_id, name, extra, figure_gb, evidence, explanation in _MEASUREMENTS:
        profile = {
            "schema_version": 1,
            "profile_id": pid,
            "framework": "vllm",
            "framework_version": None,
            "engine": None,
            "model": {"id": model_id, "name_as_given": name},
            **{k: v for k, v in extra.items() if k != "series"},
            "kv_cache_mode": "pool",
            "measured": {"peak_total_gb": figure_gb},
            "measurement_notes": f"{_CAVEAT} {explanation}",
            "series": extra.get("series"),
            "use_in_fit": False,
            "exclude_reason": f"seed-plan figure of unknown method, GPU, gpu_memory_utilization and GB base. "
                              f"{explanation}",
            "flags": sorted(["unit_base_unverified", "measurement_method_unknown", "gpu_unknown",
                             "gpu_memory_utilization_unknown", "measured_scope_unknown"]
                            + (["checkpoint_unverified"] if model_id == "zai-org/GLM-4.5" else [])),
            "provenance": {"kind": "seed-plan", "ref": _REF, "evidence": evidence,
                           "converter": "fitting.seed_plan"},
        }
        validate_profile(profile)
        profiles.append(profile)
    return profiles


def main(argv=None):
    """Write the seed-plan profiles; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m fitting.seed_plan", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="profiles/seed-plan", metavar="DIR",
                        help="output directory; files go to DIR/vllm/ (default: profiles/seed-plan)")
    args = parser.parse_args(argv)
    for profile in seed_plan_profiles():
        print(write_profile(profile, Path(args.out) / "vllm"))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
