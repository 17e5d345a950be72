"""``seqstudio train`` and ``train-recogniser``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .shell import only_regular_files, setup_logging


# -- train ------------------------------------------------------------------------------------------------------------
@click.command()
@click.argument("data_dir", type=click.Path(path_type=Path), required=False)
@click.option("--backend", "-b", help="Generator family (see `seqstudio plugins`). Default: the domain's own choice "
                                         "(seqvae for MIDI and strokes, rnn for text).")
@click.option("--domain", help="Domain plugin that reads the files. Default: the one named in the folder's "
                               "seqstudio.yaml (written by `data build`), else guessed from the file types. "
                               "E.g. --domain text to learn a folder of .abc tunes as text (not as MIDI).")
@click.option("--codec", help="The domain's codec (e.g. pianoroll, events; char, bpe for text). "
                              "Default: the domain's default.")
@click.option("--run-dir", type=click.Path(path_type=Path), help="Where to write the run. Default: runs/NAME-BACKEND.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              callback=only_regular_files, help="YAML file with codec:/backend:/train: sections.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override one option, e.g. --set backend.latent_size=32 --set codec.transpose=5 (repeatable).")
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many optimisation steps.")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), help="Stop after this many passes over the data.")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True),
              help="Wall-time budget for training (validation excluded), for comparisons at equal time.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Windows per batch (per process under torchrun).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Learning rate.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Default: auto (CUDA when present).")
@click.option("--seed", type=int, help="Random seed (data order, initialisation, sampling).")
@click.option("--threads", type=click.IntRange(min=0),
              help="PyTorch CPU threads (train.threads; generate and evaluate use it too). Default 0 = auto: "
                   "$OMP_NUM_THREADS when set, else one per idle core (PyTorch's one per core was 3-40x slower "
                   "than 1 thread when other jobs shared the CPU).")
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir from its last checkpoint "
                                             "(with its saved options; change only budgets or --threads).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or info lines.")
def train(data_dir, backend, domain, codec, run_dir, config_file, overrides, max_steps, epochs, max_minutes,
          batch_size, lr, device, seed, threads, resume, quiet):
    """Train a generator on DATA_DIR (a folder of files, or one with train/ valid/ test/ subfolders).

    With neither --max-steps, --epochs nor --max-minutes, training runs 20 epochs (stopping early when the
    validation score stops improving). Under `torchrun --nproc_per_node N -m seqstudio train ...` it trains
    with DistributedDataParallel.

    SIGINT, SIGTERM and SIGHUP save last.pt and stop (exit 128 + the signal's number; --resume continues
    exactly). A NaN/inf loss stops the run with an error, leaving the checkpoints at the last finite weights.
    """
    from .. import api

    setup_logging(quiet)
    if data_dir is None and not resume:
        raise click.UsageError("missing DATA_DIR (only --resume may omit it)")
    options = dict(max_steps=max_steps, epochs=epochs, max_minutes=max_minutes, batch_size=batch_size, lr=lr,
                   device=device, seed=seed, threads=threads)
    from ..errors import NothingToDo, TrainingInterrupted

    try:
        path = api.train(data_dir, backend=backend, domain=domain, codec=codec, run_dir=run_dir,
                         config=config_file, overrides=list(overrides), resume=resume, progress=not quiet, **options)
    except NothingToDo as exc:  # a finished run resumed: said once, exit 0, nothing changed
        click.echo(str(exc))
        return
    except TrainingInterrupted as exc:  # last.pt saved; exit 128 + the signal's number, like the shell's
        import signal

        # a Ctrl-C is the user's own wish, not an error; SIGTERM/SIGHUP came from elsewhere and are reported as one
        click.echo(str(exc) if exc.signum == signal.SIGINT else f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    click.echo(f"run directory: {path}")



@click.command("train-recogniser")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("data_dir", type=click.Path(path_type=Path), required=False)
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Training budget in CPU minutes of this process.")
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many steps (instead of the time).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def train_recogniser(run_dir, data_dir, max_minutes, max_steps, seed, quiet):
    """Train a recogniser that reads RUN_DIR's samples back into text, on the lines of its data folder (or
    DATA_DIR), and store it in RUN_DIR/recogniser/.

    For text-conditioned runs (handwriting from text): `evaluate RUN_DIR --samples N` then reports the
    character error rate of generated lines against the asked text, beside the real lines' (the ceiling) and
    that against another line's text (chance). The best validation checkpoint is kept; the test lines'
    CER is printed at the end.
    """
    from .. import api
    from ..api import text_reading

    setup_logging(quiet=quiet)
    run = api.load(run_dir)
    figures = text_reading.train(run, data_dir, max_minutes=0 if max_steps else max_minutes,
                                max_steps=max_steps or 0, seed=seed, progress=not quiet)
    click.echo(f"recogniser stored in {Path(run_dir) / text_reading.FOLDER}: {figures['steps']} steps, "
               f"{figures['cpu_minutes']:.1f} CPU minutes, valid CER {figures['valid_cer']:.3f}"
               + (f", test CER {figures['test_cer']:.3f} (against another line's text "
                  f"{figures['test_cer_other_text']:.3f})" if "test_cer" in figures else ""))
