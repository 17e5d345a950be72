"""Where and how a model computes: the device, the autocast precision and the CPU thread count."""

from __future__ import annotations

import contextlib

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


def use_threads(threads: int) -> None:
    """``train.threads``: N > 0 sets PyTorch's CPU threads in this process (0 leaves PyTorch's default).

    The default, one thread per core, made training 20-40x slower when other jobs shared the CPU. Inter-op
    threads follow when PyTorch still allows it (only before any inter-op work has started in the process).
    """
    if threads <= 0:
        return
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != threads:
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # too late in this process: the intra-op setting above is what matters
            pass
