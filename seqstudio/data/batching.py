"""Batches for one epoch: which windows each rank takes, gathered, augmented and moved to the device."""

from __future__ import annotations

import torch

from .. import conditions as conditions_mod
from ..domain import Codec
from ..errors import DataError
from .windows import WindowSet


def batch_indices(n: int, batch_size: int, epoch: int, seed: int, shuffle: bool = True, rank: int = 0,
                  world: int = 1) -> list[torch.Tensor]:
    """This rank's batches for one epoch: same order for the same (seed, epoch), equal count on every rank."""
    if shuffle:
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=g)
    else:
        order = torch.arange(n)
    if world > 1:  # pad so every rank gets the same number of batches (DDP would hang otherwise)
        per_rank = -(-n // world)
        order = torch.cat([order, order[: per_rank * world - n]])[rank::world]
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def make_batch(windows: WindowSet, index: torch.Tensor, device: torch.device, codec: Codec | None = None,
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Padded batch on ``device``, gathered from the windows' compact rows and expanded to float here;
    ``codec`` + ``generator`` given = training augmentation applied."""
    x, lengths = windows.gather(index)
    t = x.shape[1]
    changes = None
    if codec is not None and generator is not None:
        x, lengths, changes = _augment(x, lengths, codec, generator)
    mask = torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)
    batch = {"x": x.to(device, non_blocking=True), "mask": mask.to(device, non_blocking=True),
             "lengths": lengths.to(device, non_blocking=True)}
    if windows.conditions is not None:  # conditions: [B, A] attribute indices
        rows = windows.conditions[index]
        if changes is not None and windows.condition_moves is not None:  # a key transposed with the notes
            rows = conditions_mod.moved_indices(rows, changes, windows.condition_moves)
        batch["condition"] = rows.to(device, non_blocking=True)
    if windows.texts is not None:  # text: [B, U] symbol ids of whole lines and their mask
        text = windows.texts[index]
        text = text[:, : max(1, int((text > 0).sum(1).max()))]
        batch["text"] = text.to(device, non_blocking=True)
        batch["text_mask"] = (text > 0).to(device, non_blocking=True)
    return batch


def _augment(x, lengths, codec, generator):
    """Augment each window; a codec may shorten one (e.g. by dropping points), never lengthen it. Also gives
    what the codec changed in each (``Codec.augment_with_change``), for the conditions to follow."""
    out = torch.zeros_like(x)
    new_lengths = lengths.clone()
    changes = []
    for i, n in enumerate(lengths.tolist()):
        y, change = codec.augment_with_change(x[i, :n], generator)
        changes.append(change)
        if y.shape[0] > n:
            raise DataError(f"codec {codec.name}: augment lengthened a window ({n} -> {y.shape[0]} steps)")
        out[i, : y.shape[0]] = y
        new_lengths[i] = y.shape[0]
    return out, new_lengths, changes
