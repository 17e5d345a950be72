"""Batches of windows of similar length, so a step computes real steps rather than padding.

Whole-piece data (``codec.window=0``) has windows of very different lengths: JSB Chorales' pieces run 25-129
steps, and batches drawn at random computed 1.72x (batch 16) the real steps, every batch padded to its longest
piece. Grouping by length brings that to about 1.06x, and real steps per second up with it.

How: each window's length is jittered by up to ``spread`` (10%), the windows are sorted by the jittered length
and cut into batches, and the batches are shuffled. Windows within ~10% of each other's length therefore meet in
different combinations every epoch (shuffled within a bucket of similar lengths), and the order of the batches is
random (shuffled across buckets). Everything is drawn from one generator seeded by (seed, epoch), exactly as the
random order was, so ``--resume`` reproduces the uninterrupted run; every window is in exactly one batch per
epoch, and the number of batches per epoch is the random order's (the budget counts epochs in batches).

A backend's loss is its batch's mean per real step. Grouped, a batch of short pieces would weigh each of its steps
several times as much as a batch of long ones; the trainer multiplies each grouped batch's loss by its real steps
over the epoch's mean per batch (``token_weight``), so every real step weighs alike, as in random batches.
"""

from __future__ import annotations

import numpy as np
import torch

SPREAD = 0.1  # jitter, as a fraction of a window's length: 5-10% kept JSB's padding at 1.05-1.06x


def varies(lengths: np.ndarray) -> bool:
    """Whether grouping can save anything: windows of one length are padded to nothing either way."""
    return len(lengths) > 1 and int(lengths.min()) != int(lengths.max())


def length_grouped_batches(lengths: np.ndarray, batch_size: int, epoch: int, seed: int, rank: int = 0,
                           world: int = 1, spread: float = SPREAD) -> list[torch.Tensor]:
    """This rank's batches for one epoch (window indices), grouped by length; same for the same (seed, epoch).

    Under DDP the ranks' batches of one step come from one group of ``batch_size * world`` similar windows, and
    every rank gets the same number of batches (as ``data.batch_indices``: DDP would hang otherwise)."""
    n = len(lengths)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    jitter = torch.rand(n, generator=g, dtype=torch.float64).numpy()
    key = np.asarray(lengths, dtype=np.float64) * (1.0 + spread * jitter)
    order = np.argsort(key, kind="stable")
    if world > 1:  # pad so every rank gets the same number of windows, as data.batch_indices does
        per_rank = -(-n // world)
        order = np.concatenate([order, order[: per_rank * world - n]])
    group = batch_size * world
    groups = [order[i : i + group] for i in range(0, len(order), group)]
    shuffled = torch.randperm(len(groups), generator=g).tolist()
    return [torch.from_numpy(np.ascontiguousarray(groups[k][rank::world])).long() for k in shuffled]


def token_weight(lengths: np.ndarray, index: torch.Tensor, mean_steps: float) -> float:
    """The factor that makes a grouped batch's mean loss count every real step alike: its real steps over the
    epoch's mean per batch. A backend's loss is the batch's mean per real step; in random batches every batch
    holds about as many real steps, but a batch of short pieces would otherwise weigh each of its steps 4x as
    much as a batch of long ones (at JSB's 25-129 steps), and training would fit another objective."""
    return float(np.asarray(lengths)[index.numpy()].sum()) / max(mean_steps, 1e-9)


def weighted_forward(forward, weight: float):
    """``forward`` whose returned loss is multiplied by ``weight`` (the statistics, sums, are left as they are)."""

    def weighted(*args, **kwargs):
        out = forward(*args, **kwargs)
        if isinstance(out, tuple) and out and isinstance(out[0], torch.Tensor):
            return (out[0] * weight, *out[1:])
        return out

    return weighted


def padding_ratio(lengths: np.ndarray, batches: list[torch.Tensor]) -> float:
    """Computed steps (each batch padded to its longest window) over real steps: 1.0 = no padding."""
    lengths = np.asarray(lengths)
    real = sum(int(lengths[b.numpy()].sum()) for b in batches)
    computed = sum(int(lengths[b.numpy()].max()) * len(b) for b in batches if len(b))
    return computed / max(1, real)
