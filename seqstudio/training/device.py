"""Where and how a model computes: the device, the autocast precision, the CPU thread count and denormals."""

from __future__ import annotations

import contextlib
import os

import torch

from ..errors import ConfigError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for, but PyTorch sees no CUDA GPU here; use --device cpu")
        return torch.device("cuda", local_rank)
    if name != "cpu":
        raise ConfigError(f"unknown device {name!r}; valid: auto, cpu, cuda")
    return torch.device("cpu")


def autocast(precision: str, device: torch.device):
    """The context for a forward pass: bf16 autocast when asked for (``auto``: on CUDA only), else nothing."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def idle_cores(cores: int | None = None, load: float | None = None) -> int:
    """The cores this process may use that other jobs are not already using: the CPU affinity set minus the
    one-minute load average (rounded), at least 1. ``cores``/``load`` are for tests."""
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # not on Linux
            cores = os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    return max(1, min(cores, cores - int(round(load))))


def auto_threads() -> int | None:
    """What ``train.threads: 0`` (auto) means: ``OMP_NUM_THREADS`` when the user set it (PyTorch already honours
    it: None = leave it), else one thread per idle core (``idle_cores``).

    PyTorch's own default, one thread per core, is fastest on an idle machine but fell apart when other jobs
    shared the CPU: an LSTM step with 2 threads on 2 cores next to one busy job took 6.8-15.5 s against 2.3 s with
    1 thread (BENCHMARKS.md, "Defaults"), because OpenMP threads that wait for a descheduled sibling spin.
    """
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    # under torchrun the processes of one machine share its idle cores
    per_machine = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return max(1, idle_cores() // per_machine)


def flush_denormals() -> bool:
    """CPU floats below 1.2e-38 (denormals) are read as, and results flushed to, zero in this thread and the
    threads it starts. Returns whether the CPU supports it (x86 with SSE3; elsewhere a no-op).

    Weight decay pulls the weights that the data never exercises (the piano keys a corpus never plays) towards
    zero through the denormal range, where x86 computes in microcode, many times slower: a JSB rnn + NADE run with
    ``train.weight_decay=1e-4`` held 29,357 denormal values (weights and Adam state) after 6,000 steps and
    trained 3.0x slower than with them flushed (BENCHMARKS.md, "Denormals"). Values that small change no result
    we can measure.
    """
    return torch.set_flush_denormal(True)


def use_threads(threads: int) -> int:
    """``train.threads``: N > 0 sets PyTorch's CPU threads in this process; 0 (auto) picks ``auto_threads``.
    Returns the thread count in effect.

    Inter-op threads follow when PyTorch still allows it (only before any inter-op work has started in the
    process).
    """
    if threads <= 0:
        threads = auto_threads()
        if threads is None:
            return torch.get_num_threads()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != threads:
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # too late in this process: the intra-op setting above is what matters
            pass
    return threads
