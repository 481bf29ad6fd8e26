"""GPU memory as the driver sees it (NVML, from nvidia-ml-py), sampled in a background thread.

PyTorch's counters miss the CUDA context, cuBLAS workspaces, NCCL buffers and memory of
child processes (vLLM's engine core); NVML's per-device ``used`` includes everything, so
its peak over a run is the true footprint. ``pynvml`` is imported lazily: without it (or
without a GPU) the sampler reports ``available = False`` and no numbers.
"""

from __future__ import annotations

import os
import threading
import time


def _pynvml():
    import pynvml  # optional dependency: nvidia-ml-py (profile extra)

    pynvml.nvmlInit()
    return pynvml


def visible_gpu_indices(device: str = "cuda:0", count: int = 1) -> list[int]:
    """NVML indices of ``count`` GPUs starting at ``device`` (``cuda:K``), through CUDA_VISIBLE_DEVICES.

    Parameters
    ----------
    device : str
        ``cuda`` or ``cuda:K``.
    count : int
        Number of consecutive CUDA ordinals (tensor-parallel size).
    """
    first = int(device.split(":", 1)[1]) if ":" in device else 0
    ordinals = list(range(first, first + count))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        parts = [p.strip() for p in visible.split(",") if p.strip()]
        if all(p.isdigit() for p in parts):
            return [int(parts[i]) for i in ordinals if i < len(parts)]
    return ordinals


def gpu_info(indices) -> dict:
    """Name, total memory (bytes), driver and CUDA driver version of the GPUs, or ``{}`` without NVML."""
    try:
        nv = _pynvml()
    except Exception:
        return {}
    try:
        handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in indices]
        names = [nv.nvmlDeviceGetName(h) for h in handles]
        names = [n.decode() if isinstance(n, bytes) else n for n in names]
        totals = [int(nv.nvmlDeviceGetMemoryInfo(h).total) for h in handles]
        driver = nv.nvmlSystemGetDriverVersion()
        cuda = nv.nvmlSystemGetCudaDriverVersion()
        return {
            "gpu_name": names[0] if names else None,
            "gpu_names": names,
            "gpu_memory_total_bytes": totals[0] if totals else None,
            "gpu_count": len(handles),
            "driver_version": driver.decode() if isinstance(driver, bytes) else driver,
            "cuda_driver_version": f"{cuda // 1000}.{(cuda % 1000) // 10}",
        }
    except Exception as exc:  # NVML present but unusable: say so rather than guess
        return {"nvml_error": str(exc)}
    finally:
        try:
            nv.nvmlShutdown()
        except Exception:
            pass


class NvmlSampler:
    """Sample each GPU's used memory every ``interval_s`` seconds between ``start`` and ``stop``.

    Parameters
    ----------
    indices : list of int
        NVML device indices.
    interval_s : float
        Sampling period, seconds.

    Examples
    --------
    >>> with NvmlSampler([0]) as s:   # doctest: +SKIP
    ...     run()
    >>> s.peak_over_baseline_bytes()  # doctest: +SKIP
    {0: 17179869184}
    """

    def __init__(self, indices, interval_s: float = 0.005):
        self.indices = list(indices)
        self.interval_s = float(interval_s)
        self.available = False
        self.error = None
        self.baseline_bytes: dict[int, int] = {}
        self.peak_bytes: dict[int, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = None
        self._nv = None
        self._handles = []

    def _read(self) -> list[int]:
        return [int(self._nv.nvmlDeviceGetMemoryInfo(h).used) for h in self._handles]

    def start(self) -> "NvmlSampler":
        """Read the baseline and start the sampling thread (no-op without NVML)."""
        try:
            self._nv = _pynvml()
            self._handles = [self._nv.nvmlDeviceGetHandleByIndex(i) for i in self.indices]
            used = self._read()
        except Exception as exc:
            self.error = f"NVML unavailable: {exc}"
            return self
        self.available = True
        self.baseline_bytes = dict(zip(self.indices, used))
        self.peak_bytes = dict(self.baseline_bytes)
        self._thread = threading.Thread(target=self._loop, name="nvml-sampler", daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.is_set():
            try:
                for i, u in zip(self.indices, self._read()):
                    if u > self.peak_bytes[i]:
                        self.peak_bytes[i] = u
                self.samples += 1
            except Exception as exc:  # keep the peak seen so far
                self.error = str(exc)
                return
            time.sleep(self.interval_s)

    def stop(self) -> "NvmlSampler":
        """Take a last sample, stop the thread and shut NVML down."""
        if not self.available:
            return self
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            for i, u in zip(self.indices, self._read()):
                self.peak_bytes[i] = max(self.peak_bytes[i], u)
        except Exception:
            pass
        try:
            self._nv.nvmlShutdown()
        except Exception:
            pass
        return self

    def current_bytes(self) -> dict[int, int]:
        """Per GPU: used memory now, bytes (``{}`` without NVML)."""
        if not self.available:
            return {}
        return dict(zip(self.indices, self._read()))

    def peak_over_baseline_bytes(self) -> dict[int, int]:
        """Per GPU: peak used minus the used memory at ``start`` (other processes), bytes."""
        return {i: self.peak_bytes[i] - self.baseline_bytes[i] for i in self.peak_bytes}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
