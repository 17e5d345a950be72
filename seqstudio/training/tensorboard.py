"""An optional TensorBoard writer beside ``metrics.jsonl`` (``--set train.tensorboard=true``).

``metrics.jsonl`` stays the record of a run; this mirrors each train and valid record as scalars under
``RUN_DIR/tensorboard`` (``tensorboard --logdir RUN_DIR``), the convention Lightning and Hugging Face users
look for. TensorBoard is not a dependency: without the package the run trains as usual and says once why no
TensorBoard logs are written.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

log = logging.getLogger("seqstudio")
SKIP = {"step", "epoch", "split"}


class TensorBoardWriter:
    def __init__(self, run_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def add(self, record: dict) -> None:
        """One metrics record as scalars ``SPLIT/NAME`` at its step."""
        split, step = record.get("split", "train"), int(record.get("step", 0))
        for key, value in record.items():
            if key in SKIP or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                self.writer.add_scalar(f"{split}/{key}", value, step)

    def close(self) -> None:
        self.writer.close()


def open_writer(run_dir: Path, enabled: bool) -> TensorBoardWriter | None:
    """A writer when ``enabled`` and TensorBoard is installed; otherwise None (with one warning if enabled)."""
    if not enabled:
        return None
    try:
        import tensorboard  # noqa: F401 - torch.utils.tensorboard needs it, and says so less clearly
        return TensorBoardWriter(run_dir)
    except ImportError:
        log.warning("train.tensorboard=true, but the tensorboard package is not installed "
                    "(pip install tensorboard): training goes on without TensorBoard logs")
        return None
