"""``train``: a folder of files in, a run directory out (prepared by ``data.prepare``, fitted by the trainer)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from .. import data, runlock
from ..distributed import init_distributed, leave
from ..errors import ConfigError, NothingToDo, RunDirError, SeqStudioError, TrainingDiverged, TrainingInterrupted
from ..rundir import check_resumable, load_fitted, load_run, load_spec, write_run_files
from ..runspec import model_changes
from .configuration import default_run_dir, resolve_config
from .generation import generate
from .sample_files import write_samples

log = logging.getLogger("seqstudio")


def _lock_run_dir(run_dir: Path) -> None:
    """One writer per run directory (``seqstudio.runlock``): under torchrun only rank 0 writes, so only it locks."""
    if os.environ.get("RANK", "0") == "0":
        runlock.acquire(run_dir, "train --run-dir")


@runlock.releases_locks
def train(data_dir: str | Path | None = None, *, backend: str | None = None, domain: str | None = None,
          codec: str | None = None, run_dir: str | Path | None = None, config: str | Path | None = None,
          overrides: list[str] = (), resume: bool = False, progress: bool = True, **train_options) -> Path:
    """Train a backend on a folder of files; returns the run directory."""
    from ..training import Trainer, flush_denormals, use_threads

    base = None
    if resume:
        if run_dir is None:
            raise ConfigError("--resume needs --run-dir pointing at the run to continue")
        if Path(run_dir).is_dir():
            _lock_run_dir(Path(run_dir))
        base = load_spec(Path(run_dir))
        check_resumable(Path(run_dir))
        if data_dir is not None and Path(data_dir).resolve() != base.data_path:
            raise ConfigError(f"--resume continues the run on its own data ({base.data['path']}); "
                              f"omit DATA_DIR or start a new run")
    spec = resolve_config(Path(data_dir) if data_dir else None, backend, domain, codec, config, overrides,
                          train_options, base)
    changed = model_changes(base, spec) if base is not None else []
    if changed:  # before any data is read: the saved weights belong to the saved model
        raise ConfigError(f"cannot resume {run_dir}: it does not match this configuration, which changes the model "
                          f"({'; '.join(changed)}); change only budgets when resuming (--max-steps, --epochs, "
                          f"--max-minutes, --threads, --lr), or start a new run with another --run-dir")
    run_dir = Path(run_dir) if run_dir else default_run_dir(spec)
    if not resume:
        _lock_run_dir(run_dir)
    if not resume and run_dir.exists() and not runlock.is_empty(run_dir):
        hint = ("it holds a run that stopped before its first checkpoint: `seqstudio train --resume --run-dir "
                f"{run_dir}` starts it again from step 0 with its saved options"
                if (run_dir / "config.yaml").is_file() and not (run_dir / "last.pt").exists()
                else "use --resume to continue it")
        raise RunDirError(f"run directory {run_dir} already exists and is not empty; {hint}, "
                          f"or choose another --run-dir")
    from_checkpoint = resume and (run_dir / "last.pt").exists()
    if resume and not from_checkpoint:
        log.warning("%s has no checkpoint yet (the run stopped before its first one): training starts again "
                    "from step 0 with its saved options", run_dir)
        if os.environ.get("RANK", "0") == "0":
            from ..rundir import trim_metrics

            trim_metrics(run_dir, 0)  # the restarted steps are logged again: no record twice
    threads = use_threads(spec.train.threads)
    flush_denormals()
    if spec.train.threads <= 0:
        log.info("threads: %d (train.threads=0: %s)", threads,
                 "OMP_NUM_THREADS" if os.environ.get("OMP_NUM_THREADS") else "one per idle core")
    saved = load_fitted(run_dir, spec)[1] if resume else None
    prepared = data.prepare(spec, fitted=saved, progress=progress)
    codec_obj, fitted, files, sets = prepared.codec, prepared.fitted, prepared.files, prepared.windows
    log.info("data: %d train / %d valid files -> %d / %d windows of up to %d steps",
             len(files["train"]), len(files["valid"]), len(sets["train"]), len(sets["valid"]),
             sets["train"].max_length)
    warn_unbalanced(len(sets["train"]), len(sets["valid"]))
    valid_used = capped_validation(sets["valid"], spec.train.valid_max_windows)
    torch.manual_seed(spec.train.seed)
    model = spec.make_backend(codec_obj.spec, fitted.conditions, fitted.text)
    if not from_checkpoint and spec.train.init_output_bias:
        x, lengths = sets["train"].gather(torch.arange(min(len(sets["train"]), 4096)))  # bounded for huge data
        model.init_from_data(x, torch.arange(x.shape[1]) < lengths.unsqueeze(1))
    dist = init_distributed()
    trainer = Trainer(model, codec_obj, sets["train"], valid_used, spec.train, run_dir, dist=dist,
                      progress=progress)
    if from_checkpoint:
        trainer.resume()  # before config.yaml is rewritten: a refused resume leaves the run as it was
        _refuse_finished(trainer, run_dir, dist)
    if dist.is_main:
        write_run_files(run_dir, spec, codec_obj, fitted)
        record_json(run_dir / "data.json", {f"{s} files": len(files[s]) for s in data.SPLITS} | {
            f"{s} windows": len(sets[s]) for s in sets} | {"valid windows validated": len(valid_used)} | {
            "steps per window": sets["train"].max_length})
    try:
        state = trainer.fit()
    except (TrainingDiverged, TrainingInterrupted):
        leave(dist)  # every process raises these at the same step, so they can leave together
        raise
    log.info("stopped after %d steps (%s)", state.step, state.stopped_because or "done")
    if dist.is_main and spec.train.samples > 0:
        run = load_run(run_dir, device=trainer.device)
        write_samples(run, generate(run, n=spec.train.samples, seed=spec.train.seed), run_dir / "samples",
                      sample_set=False)
    leave(dist)
    return run_dir


def warn_unbalanced(train_windows: int, valid_windows: int) -> None:
    """Say so when the valid split outweighs the train split: the file hash put a huge file (most of the data)
    into valid, so validation takes longer than training and the model learns from a sliver."""
    if valid_windows > max(train_windows, 100):
        log.warning("the valid split has %d windows and the train split %d: one big file probably dominates the "
                    "valid split, so training learns from little and each validation takes long; split the data "
                    "into train/ and valid/ subfolders yourself, or cut the big file into pieces",
                    valid_windows, train_windows)


def capped_validation(windows: data.WindowSet, cap: int) -> data.WindowSet:
    """At most ``cap`` windows of the valid split (``train.valid_max_windows``; 0 = all), evenly spaced over it
    (the same ones at every validation and on resume), said in the log: a valid split that one huge file
    dominates would otherwise make every validation take minutes."""
    if not cap or len(windows) <= cap:
        return windows
    log.warning("validation uses %d evenly spaced windows of the valid split's %d (train.valid_max_windows=%d; "
                "0 = all); evaluate --split valid still scores them all", cap, len(windows), cap)
    return windows.subset(np.linspace(0, len(windows) - 1, cap).round().astype(np.int64))


def record_json(path: Path, values: dict) -> None:
    """A small JSON record in a run directory (``data.json``: what training saw; ``evaluation-SPLIT.json``:
    the last ``evaluate``), for ``seqstudio report``. A record that cannot be written is a warning: the command
    that made it has done its work."""
    import json

    from ..rundir import atomic_write_bytes

    try:
        atomic_write_bytes(Path(path), json.dumps(values, indent=1, default=str).encode())
    except (OSError, SeqStudioError) as exc:
        log.warning("could not write %s: %s", path, exc)


def _refuse_finished(trainer, run_dir: Path, dist) -> None:
    """``NothingToDo`` when the resumed run is already past its budget or stopped early: resuming it would
    otherwise validate again (one more ``bad_validations``, a rewritten last.pt) or train on past early stopping."""
    reason = trainer.finished_because()
    if not reason:
        return
    s, t = trainer.state, trainer.config
    why = {"early_stopping": f"it stopped early at step {s.step} ({s.bad_validations} validations without "
                             f"improvement, train.patience={t.patience}); raise --set train.patience=N "
                             f"(0 = never stop early) to train on",
           "max_steps": f"it reached its budget (step {s.step} of --max-steps {t.max_steps}); raise --max-steps "
                        f"to train on",
           "epochs": f"it reached its budget ({t.epochs:g} epochs, step {s.step}); raise --epochs to train on",
           "max_minutes": f"it reached its budget ({s.elapsed / 60:.2f} of --max-minutes {t.max_minutes:g}); "
                          f"raise --max-minutes to train on"}[reason]
    leave(dist)
    raise NothingToDo(f"nothing to do: {run_dir} is finished; {why}")
