"""Which process this is under ``torchrun``, and the two collective operations the library needs.

Kept apart from the trainer so that backends (a GAN's balance decisions), evaluation and the trainer share one
definition: nothing but this module calls ``torch.distributed``, and a single process never touches it.
"""

from __future__ import annotations

import dataclasses
import os

import torch
import torch.distributed as dist


@dataclasses.dataclass(frozen=True)
class DistInfo:
    """This process's place in the job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and logs."""
        return self.rank == 0

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` in place over all processes (a no-op in a single process); returns it."""
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor

    def all_reduce_max(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor

    def barrier(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.barrier()


def init_distributed() -> DistInfo:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); a no-op otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        use_nccl = torch.cuda.is_available() and os.environ.get("SEQSTUDIO_DIST_BACKEND") != "gloo"
        dist.init_process_group(backend="nccl" if use_nccl else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def leave(info: DistInfo) -> None:
    """Leave the process group together: a rank that exits while others still talk to it aborts."""
    if info.world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def add_stats(total: dict[str, torch.Tensor], stats: dict[str, torch.Tensor]) -> None:
    """Accumulate a batch's summed statistics into ``total`` (on device: no host sync)."""
    for k, v in stats.items():
        v = v.detach().float()
        total[k] = total[k] + v if k in total else v


def reduce_stats(stats: dict[str, torch.Tensor], info: DistInfo) -> dict[str, float]:
    """Summed statistics of all processes, as floats (one host sync for the whole dict)."""
    if not stats:
        return {}
    keys = sorted(stats)
    flat = torch.stack([stats[k].detach().float().reshape(()) for k in keys])
    info.all_reduce_sum(flat)
    return dict(zip(keys, flat.cpu().tolist()))
