"""Physics against PyTorch's own accounting (issue 14).

A tiny real architecture (2 layers, small hidden size, a realistic 32k vocabulary, random
weights) runs ``forward`` and ``generate`` on CPU under a ``TorchDispatchMode`` that counts
the bytes of every tensor storage an operator creates and, through a ``weakref.finalize`` on
the storage, every storage freed: the peak of live storage bytes above what existed before
the call (the weights) is PyTorch's bookkeeping of activation memory. It must agree with
:func:`fitting.physics.transformers.transformers_peak_bytes` within 5% for eager and SDPA
attention, prefill and decode, with transformers' logits-to-keep behaviour on (the default)
and off (``logits_to_keep=0``), in float32 and bfloat16. The installed transformers is the
version given to the physics.
"""

from __future__ import annotations

import itertools
import weakref

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_flatten  # noqa: E402

from fitting.physics.architecture import Architecture  # noqa: E402
from fitting.physics.transformers import parse_version, transformers_peak_bytes  # noqa: E402

TOLERANCE = 0.05


class StorageTracker(TorchDispatchMode):
    """Live bytes of the tensor storages created while active; ``peak`` is their maximum."""

    def __init__(self):
        super().__init__()
        self.current = 0
        self.peak = 0
        self._seen = {}

    def _free(self, key, nbytes):
        self.current -= nbytes
        self._seen.pop(key, None)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            st = t.untyped_storage()
            key = id(st)
            ref = self._seen.get(key)
            if ref is not None and ref() is st:
                continue  # a view or an in-place result: storage already counted
            n = st.nbytes()
            self._seen[key] = weakref.ref(st)
            weakref.finalize(st, self._free, key, n)
            self.current += n
            self.peak = max(self.peak, self.current)
        return out

    def reset_peak(self):
        previous, self.peak = self.peak, self.current
        return previous


CONFIGS = {
    # GQA (8 query heads, 2 KV heads), a Llama-3-like shape scaled down
    "llama-gqa": ("llama", dict(vocab_size=32000, hidden_size=256, intermediate_size=704, num_hidden_layers=2,
                                num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=4096)),
    # MHA with q/k/v biases (Qwen2 family)
    "qwen2-mha": ("qwen2", dict(vocab_size=32000, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096)),
}


def _build(name, dtype, attn):
    model_type, fields = CONFIGS[name]
    config = transformers.AutoConfig.for_model(model_type, **fields)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype),
                                                          attn_implementation=attn).eval()
    arch = Architecture.from_hf_config({"model_type": model_type, **fields})
    return model, arch


def measure(model, *, mode, batch_size, prompt_len, new_tokens, logits_to_keep):
    """Peak live bytes per phase: ``{"prefill": ..., "decode": ...}`` (decode: the largest step)."""
    tracker = StorageTracker()
    peaks = []
    hook = model.register_forward_pre_hook(lambda m, a, k: peaks.append(tracker.reset_peak()), with_kwargs=True)
    ids = torch.randint(0, model.config.vocab_size, (batch_size, prompt_len), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    kw = {} if logits_to_keep is None else {"logits_to_keep": logits_to_keep}
    try:
        with torch.inference_mode():
            if mode == "forward":
                with tracker:
                    out = model(input_ids=ids, attention_mask=mask, **kw)
                    del out
            else:
                # no eos and no min_new_tokens: exactly new_tokens steps and no logits processor
                gc = transformers.GenerationConfig(max_new_tokens=new_tokens, do_sample=False, use_cache=True,
                                                   pad_token_id=0, eos_token_id=None, bos_token_id=None)
                with tracker:
                    out = model.generate(ids, attention_mask=mask, generation_config=gc, **kw)
                assert out.shape[1] == prompt_len + new_tokens
    finally:
        hook.remove()
    peaks.append(tracker.peak)
    # peaks[0]: before the prefill; peaks[1]: the prefill and the sampling after it; then one per decode step
    phases = {"prefill": peaks[1]}
    if mode == "generate" and len(peaks) > 2:
        phases["decode"] = max(peaks[2:])
    return phases


def test_the_tracker_counts_storages_and_frees():
    tracker = StorageTracker()
    with tracker:
        a = torch.empty(1000, dtype=torch.float32)
        b = a.view(10, 100)          # a view: no new storage
        c = torch.ones(250, dtype=torch.int64)   # a and c alive: 6000 B
        del a, b
        d = c + 1                                 # c and d alive: 4000 B
        e = torch.cat([c, d, d])                  # c, d and e alive: 4000 + 6000 B
        del c, d, e
    assert tracker.peak == 2000 + 2000 + 6000
    assert tracker.current == 0


CASES = [("llama-gqa", dt, attn, mode, ltk)
         for dt, attn, mode, ltk in itertools.product(["float32", "bfloat16"], ["eager", "sdpa"],
                                                      ["forward", "generate"], [None, 0])]
CASES += [("qwen2-mha", "bfloat16", attn, "generate", ltk) for attn in ("eager", "sdpa") for ltk in (None, 0)]


@pytest.mark.parametrize("name,dtype,attn,mode,logits_to_keep", CASES)
def test_physics_matches_torch_bookkeeping(name, dtype, attn, mode, logits_to_keep):
    B, S, N = 2, 192, 4
    model, arch = _build(name, dtype, attn)
    measured = measure(model, mode=mode, batch_size=B, prompt_len=S, new_tokens=N, logits_to_keep=logits_to_keep)
    physics = transformers_peak_bytes(arch, version=transformers.__version__, mode=mode, batch_size=B, prompt_len=S,
                                      new_tokens=N, attn_implementation=attn, dtype=dtype,
                                      logits_to_keep=logits_to_keep)
    assert set(measured) == ({"prefill", "decode"} if mode == "generate" else {"prefill"})
    for phase, got in measured.items():
        want = getattr(physics, phase)
        err = (want.total - got) / got
        assert abs(err) < TOLERANCE, (f"{phase}: physics {want.total:.0f} B ({want.moment}) vs torch {got} B: "
                                      f"{err:+.2%}; moments {want.moments}")


def test_logits_to_keep_is_what_moves_the_generate_prefill():
    """The check can fail: the same run priced with transformers 4.44's rules (every prompt
    position's logits in float32) is far off the measurement, with 5.24's it is not."""
    B, S, N = 2, 192, 3
    model, arch = _build("llama-gqa", "bfloat16", "sdpa")
    got = measure(model, mode="generate", batch_size=B, prompt_len=S, new_tokens=N, logits_to_keep=None)["prefill"]
    kwargs = dict(mode="generate", batch_size=B, prompt_len=S, new_tokens=N, attn_implementation="sdpa",
                  dtype="bfloat16")
    now = transformers_peak_bytes(arch, version=transformers.__version__, **kwargs).prefill.total
    old = transformers_peak_bytes(arch, version="4.44.2", **kwargs).prefill.total
    assert abs(now - got) / got < TOLERANCE
    assert old / got > 3


def test_installed_transformers_is_in_the_logits_to_keep_era():
    assert parse_version(transformers.__version__) >= (4, 45, 0)
