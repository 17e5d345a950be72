"""The ``seqstudio`` command: a thin click layer over ``seqstudio.api``.

Library errors (``SeqStudioError``) become one ``Error: ...`` line and exit status 1; nothing a user can
cause by bad input should ever print a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from .errors import SeqStudioError


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SeqStudioError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # a read-only, full or vanished destination: one line, not a traceback
            raise click.ClickException(os_error_line(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


def os_error_line(exc: OSError) -> str:
    """One line for an ``OSError`` that reached the CLI: the file, the system's reason, what to do."""
    import errno

    where = f"{exc.filename}: " if exc.filename else ""
    reason = exc.strerror or (str(exc).splitlines() or [type(exc).__name__])[0]
    hint = {errno.EROFS: "write somewhere else", errno.EACCES: "check the permissions",
            errno.EPERM: "check the permissions", errno.ENOSPC: "free some space and run the command again",
            errno.EDQUOT: "free some space and run the command again"}.get(exc.errno)
    return f"{where}{reason}" + (f"; {hint}" if hint else "")


class _Formatter(logging.Formatter):
    def format(self, record):
        prefix = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return prefix + record.getMessage()


def _regular_file(ctx, param, value):
    """Only regular files for options that are read whole: a FIFO or ``/dev/zero`` would hang the command."""
    if value is None:
        return value
    from .errors import UnsafePathError
    from .runcheck import regular_file

    for path in value if isinstance(value, tuple) else (value,):
        try:
            regular_file(Path(path))
        except UnsafePathError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


class _AboveTheBars(logging.StreamHandler):
    """Log lines go above any progress bar (``tqdm.write`` clears the bars, prints, redraws them): written
    plainly they landed on the bar's own line, and the bar's next refresh or its close erased them, so "see the
    warnings above" pointed at nothing."""

    def emit(self, record):
        try:
            from tqdm import tqdm

            # sys.stderr as it is now, the very stream the bars draw on (tqdm clears only bars on the same stream)
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # as logging.StreamHandler does: a broken stream is logging's own report, not a crash
            self.handleError(record)


def _setup_logging(quiet: bool = False) -> None:
    log = logging.getLogger("seqstudio")
    for handler in list(log.handlers):
        log.removeHandler(handler)
    handler = _AboveTheBars(click.get_text_stream("stderr"))
    handler.setFormatter(_Formatter())
    log.addHandler(handler)
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


# `generate --text`'s default sampling bias: on hershey-script the recogniser reads 27% of the letters wrong at
# bias 2 against 42% at bias 0 (BENCHMARKS.md, issue 27).
TEXT_BIAS = 2.0

# Progress bars refresh at most this often (seconds) when stderr is not a terminal (a log file, CI, nohup):
# every refresh there is another line in the log.
LOG_REFRESH_SECONDS = 5


def _quiet_bars_in_logs() -> None:
    """Where stderr is not a terminal, every progress bar (tqdm's, whoever made it) refreshes at most once in
    ``LOG_REFRESH_SECONDS``: its default ``mininterval`` is raised (tqdm may already be imported, by torch, so its
    ``TQDM_MININTERVAL`` variable is too late here; it is set too, for spawned workers)."""
    import os

    if sys.stderr.isatty():
        return
    os.environ.setdefault("TQDM_MININTERVAL", str(LOG_REFRESH_SECONDS))
    from tqdm import std

    init = std.tqdm.__init__
    if getattr(init, "seqstudio_log_refresh", False):
        return

    def slower(self, *args, **kwargs):
        kwargs.setdefault("mininterval", LOG_REFRESH_SECONDS)
        init(self, *args, **kwargs)

    slower.seqstudio_log_refresh = True
    std.tqdm.__init__ = slower


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="seqstudio")
def main():
    """Train sequence generators on folders of MIDI (and other domains' files) and generate new ones.

    \b
    Typical use:
      seqstudio data build bach-chorales data/bach
      seqstudio train data/bach --max-minutes 5
      seqstudio generate runs/bach-seqvae -n 8 -o out/
      seqstudio evaluate runs/bach-seqvae --split test
      seqstudio report runs/bach-seqvae --samples out/
    """
    _quiet_bars_in_logs()


# -- train ------------------------------------------------------------------------------------------------------------
@main.command()
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
              callback=_regular_file, help="YAML file with codec:/backend:/train: sections.")
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
    from . import api

    _setup_logging(quiet)
    if data_dir is None and not resume:
        raise click.UsageError("missing DATA_DIR (only --resume may omit it)")
    options = dict(max_steps=max_steps, epochs=epochs, max_minutes=max_minutes, batch_size=batch_size, lr=lr,
                   device=device, seed=seed, threads=threads)
    from .errors import NothingToDo, TrainingInterrupted

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


# -- generate ----------------------------------------------------------------------------------------------------------
@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("-n", "num", type=click.IntRange(min=1, max=100_000), default=4, show_default=True,
              help="Number of samples (at most 100000; written to disk in batches as they are made).")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), default=Path("generated"), show_default=True,
              help="Output folder.")
@click.option("--temperature", "-t", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Sampling temperature; 0 = most likely value at each step.")
@click.option("--length", type=click.IntRange(min=1),
              help="Steps to generate (at most 100000). Default: the training window (if at most 10000).")
@click.option("--seed", type=int, help="Random seed for reproducible samples.")
@click.option("--prime", type=click.Path(path_type=Path, exists=True, dir_okay=False), callback=_regular_file,
              help="Start every sample with this file; the output holds the prime followed by the continuation.")
@click.option("--interpolate", nargs=2, type=click.Path(path_type=Path, exists=True, dir_okay=False),
              callback=_regular_file, metavar="A B", help="Decode points on the latent path between files A and B (seq-VAE).")
@click.option("--steps", type=click.IntRange(min=2), default=5, show_default=True, help="Points for --interpolate.")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--bias", type=click.FloatRange(min=0), default=None,
              help="Graves' sampling bias for pen offsets: higher = neater, less varied strokes (0 = as trained). "
                   f"Default: {TEXT_BIAS:g} for --text lines (their letters read back far better: BENCHMARKS.md), "
                   "0 otherwise.")
@click.option("--top-k", type=int, default=0, show_default=True,
              help="Sample only among the K likeliest values of each token / each key (NADE, piano-roll); 0 = off.")
@click.option("--top-p", type=float, default=1.0, show_default=True,
              help="Nucleus sampling: only among the likeliest values holding P of the probability; 1 = off.")
@click.option("--guidance", type=float, default=1.0, show_default=True, metavar="W",
              help="Classifier-free guidance for conditional runs: 1 = plain conditional sampling, 0 = the "
                   "unconditional model, >1 = follow --condition more strongly (one extra batch row per step).")
@click.option("--no-pictures", is_flag=True, help="Do not draw a picture of each sample.")
@click.option("--audio", is_flag=True, help="Also write a WAV beside each sample the domain can play (MIDI; ABC "
                                            "tunes through their MIDI).")
@click.option("--soundfont", type=click.Path(path_type=Path, exists=True, dir_okay=False), callback=_regular_file,
              help="SoundFont (.sf2/.sf3) for --audio. Default: the General MIDI one shipped with pretty_midi.")
@click.option("--report", is_flag=True, help="Also write a page showing every sample (picture, audio, text) "
                                             "into OUT/report/index.html.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or info lines.")
@click.option("--condition", "conditions", multiple=True, metavar="NAME=VALUE",
              help="Ask a conditional run for an attribute value (repeatable), e.g. key=G:minor, meter=3/4, "
                   "label=cat; `seqstudio info RUN` lists them. Default: drawn from the training data.")
@click.option("--text", "texts", multiple=True, metavar="TEXT",
              help="Text-conditioned runs: write this line (repeatable, one output line each).")
@click.option("--style", type=click.Path(path_type=Path, exists=True, dir_okay=False), callback=_regular_file,
              help="With --text: a line you wrote (InkML, IAM XML, SVG, stroke-3 npz) whose hand to imitate.")
@click.option("--style-text", help="What the --style line says.")
@click.option("--height-mm", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="With --text: height of each line's plotter SVG, in millimetres.")
@click.option("--harmonize", type=click.Path(path_type=Path, exists=True, dir_okay=False), callback=_regular_file,
              help="Keep this melody (one line) note for note as the top voice and write the others around it "
                   "(a run that can fill in: --backend coconet --codec voices).")
@click.option("--voice", help="With --harmonize: the voice the melody is (default: the top one; e.g. bass).")
@click.option("--infill", "infill_file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              callback=_regular_file, help="Regenerate --bars of this file given what comes before and after.")
@click.option("--bars", metavar="FIRST-LAST", help="With --infill: the bars to regenerate, e.g. 5-8 (from 1).")
def generate(run_dir, num, out_dir, temperature, length, seed, prime, interpolate, steps, checkpoint, device,
             bias, top_k, top_p, guidance, no_pictures, audio, soundfont, report, quiet, conditions, texts, style,
             style_text, height_mm, harmonize, voice, infill_file, bars):
    """Generate new files from a trained RUN_DIR into --out."""
    from . import api

    _setup_logging(quiet)
    if soundfont and not audio:
        raise click.UsageError("--soundfont is for --audio")
    from .backends.base import SamplingOptions

    SamplingOptions(top_k=top_k, top_p=top_p, guidance=guidance)  # bad values: refused before any output folder
    from .infill_cli import check_fill_options, generate_filled

    check_fill_options(harmonize, voice, infill_file, bars, prime, interpolate, texts)
    run = api.load(run_dir, device=device, which=checkpoint)
    if harmonize or infill_file:  # seqstudio.filling: around given notes, not after a prime
        return generate_filled(run, out_dir, num, seed, temperature, top_k, top_p, not no_pictures, audio, soundfont,
                               quiet, harmonize=harmonize, voice=voice, infill_file=infill_file, bars=bars)
    from .guidance import check_guidance

    check_guidance(guidance, api.conditions_of(run), run.backend.text_spec is not None, run.backend)
    from .run_summary import checkpoint_note

    note = checkpoint_note(run_dir, checkpoint, run.checkpoint.get("state", {}))  # said once the files are written
    if texts or style or style_text:  # text: handwriting from text (seqstudio.text_generate)
        from . import text_generate

        lines = text_generate.generate_lines(run, list(texts), style=style, style_text=style_text,
                                             temperature=temperature, bias=TEXT_BIAS if bias is None else bias,
                                             seed=seed, length=length,
                                             top_k=top_k, top_p=top_p)
        paths = text_generate.write_lines(run, lines, list(texts), out_dir, height_mm)
        if not quiet:
            click.echo(note, err=True)
        click.echo(f"wrote {len(paths)} files for {len(texts)} line(s) to {out_dir}")
        return
    bias = 0.0 if bias is None else bias  # drawings and everything else: as trained
    if interpolate:
        samples = api.interpolate(run, *interpolate, steps=steps, length=length, temperature=temperature, seed=seed)
        prefix = "interp"
    else:
        prefix = "primed" if prime else "sample"
        paths = _generate_in_batches(run, num, out_dir, prefix, not no_pictures, audio, soundfont, quiet,
                                     length=length, temperature=temperature, seed=seed, prime=prime, bias=bias,
                                     conditions=list(conditions), top_k=top_k, top_p=top_p, guidance=guidance)
        samples = None
    if samples is not None:
        paths = api.write_samples(run, samples, out_dir, prefix=prefix, render=not no_pictures, audio=audio,
                                  soundfont=soundfont, progress=not quiet)
    if prime and not quiet:
        click.echo(f"each file starts with {prime.name} and continues with {length or run.codec.window_length} "
                   f"generated steps")
    if not quiet:
        click.echo(note, err=True)
        click.echo(f"wrote {len(paths)} files to {out_dir}")
    if report:
        from .report import write_gallery

        page = write_gallery(run.domain, out_dir, progress=not quiet)
        click.echo(f"report: {page}")


GENERATE_BATCH = 256  # samples made and written at a time: memory stays bounded whatever -n is


def _generate_in_batches(run, num, out_dir, prefix, render, audio, soundfont, quiet, seed=None, **options):
    """``generate -n NUM`` made and written ``GENERATE_BATCH`` samples at a time into one staged set (nothing
    is kept in memory but the current batch). Batch ``b`` uses seed ``seed + b``, so ``-n`` up to a batch gives
    the samples it always did."""
    from . import api
    from .outputs import staged_output

    labels, paths = {}, []
    with staged_output(out_dir, sample_set=True) as stage:
        for start in range(0, num, GENERATE_BATCH):
            count = min(GENERATE_BATCH, num - start)
            batch_seed = None if seed is None else seed + start // GENERATE_BATCH
            samples = api.generate(run, n=count, seed=batch_seed, progress=not quiet, **options)
            labels.update(api.write_sample_files(run, samples, stage, prefix, start, render, audio, soundfont,
                                                 progress=not quiet))
            paths += [Path(out_dir) / name for name in api.sample_names(run, samples, prefix, start)]
            del samples
        api.write_conditions(stage, labels)
    return paths


# -- studio ------------------------------------------------------------------------------------------------------------
@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--port", type=click.IntRange(min=1, max=65535), default=8765, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but this computer's own lets others on the network use it.")
def studio(runs, port, host):
    """A local web page to play with RUNS: generate, listen, look, write a line in your own hand."""
    from . import studio as studio_mod

    _setup_logging()
    studio_mod.serve(list(runs), host=host, port=port, announce=click.echo)


# -- info (conditions) ---------------------------------------------------------------------------------------------------
@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(run_dir, as_json):
    """What RUN_DIR is: domain, codec, backend, and the conditions `generate --condition` accepts."""
    from .run_summary import summary  # the run's files as written: no torch, no plugin import

    _setup_logging(quiet=as_json)
    result = summary(run_dir)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{result['run_dir']}: {result['domain']} / {result['codec']} / {result['backend']}")
    if result.get("text"):  # text: a sequence condition (generate --text)
        t = result["text"]
        click.echo(f"text: {t['attribute']}, {len(t['alphabet'])} characters {t['alphabet']!r} "
                   f"(generate --text \"...\"; {t['mixtures']} attention windows)")
    if result.get("decoding"):  # learned from the training pieces (Codec.fit_decoding); codec options override
        click.echo("decoding defaults (from the training pieces): "
                   + ", ".join(f"{k} {v}" for k, v in result["decoding"].items()))
    cond = result["conditions"]
    if not cond:
        click.echo("conditions: none (trained unconditionally; --condition is not available)")
        return
    click.echo(f"conditions ({cond['mode']}, dropout {cond['dropout']:g}):")
    for name, values in cond["attributes"].items():
        click.echo(f"  {name}: " + ", ".join(f"{v} ({c})" for v, c in values.items()))
    for name, counts in cond["notes"].items():
        click.echo(f"  [{name}] " + ", ".join(f"{v} {c}" for v, c in counts.items()))


# -- render ------------------------------------------------------------------------------------------------------------
@main.command()
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False),
              help="PNG picture or WAV audio to write (by its extension). Default: FILE's name with .png, in the "
                   "current folder.")
@click.option("--domain", help="Domain plugin that reads FILE. Default: guessed from the file type.")
@click.option("--limit", type=click.IntRange(min=1), default=16, show_default=True,
              help="Samples drawn from a file that holds many (e.g. a QuickDraw .npz), as one sheet.")
@click.option("--soundfont", type=click.Path(path_type=Path, exists=True, dir_okay=False), callback=_regular_file,
              help="SoundFont (.sf2/.sf3) for audio. Default: the General MIDI one shipped with pretty_midi.")
def render(file, out, domain, limit, soundfont):
    """Draw FILE (a drawing, a handwriting line, a MIDI file...) as a PNG picture, or play it into a WAV file.

    \b
      seqstudio render song.mid -o song.png
      seqstudio render song.mid -o song.wav [--soundfont MyGM.sf2]
    """
    from . import api

    _setup_logging()
    for path in api.render_file(file, out, domain=domain, limit=limit, soundfont=soundfont):
        click.echo(f"wrote {path}")


# -- convert ---------------------------------------------------------------------------------------------------------
@main.command()
@click.argument("src", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.argument("dest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--domain", help="Domain plugin that reads SRC. Default: every installed domain that reads SRC's "
                               "file type is tried until one can convert it.")
def convert(src, dest, domain):
    """Convert file SRC into DEST, the file type given by DEST's extension.

    \b
    For example an ABC tune (written by a text-domain run trained on ABC) to MIDI:
      seqstudio convert tune.abc tune.mid
    """
    from . import api

    _setup_logging()
    api.convert_file(src, dest, domain=domain)
    click.echo(f"wrote {dest}")


# -- evaluate ----------------------------------------------------------------------------------------------------------
@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("data_dir", type=click.Path(path_type=Path), required=False)
@click.option("--split", type=click.Choice(["train", "valid", "test"]), default="test", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed for the latent samples of the ELBO and for --samples.")
@click.option("--samples", "n_samples", type=click.IntRange(min=0),
              help="Also generate N samples and compare their domain metrics with the held-out split "
                   "(default: 100 for backends without a likelihood, such as lstmgan; otherwise off).")
@click.option("--temperature", "-t", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Sampling temperature for --samples.")
@click.option("--iw-samples", type=click.IntRange(min=1), metavar="K",
              help="Also report `iwae`, the importance-weighted bound on log-likelihood per step with K samples "
                   "(e.g. 100), for backends with per-step latents (vrnn).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def evaluate(run_dir, data_dir, split, as_json, checkpoint, device, seed, n_samples, temperature, iw_samples,
             quiet):
    """Held-out figures of RUN_DIR on a split of DATA_DIR (default: the folder it was trained on).

    Reports, per time step in nats: nll (reconstruction loss), kl, elbo (= -(nll + kl)), and accuracy
    (frame accuracy TP/(TP+FP+FN) for piano-rolls, token accuracy for categorical data).

    With --samples N (the default for backends without a likelihood, e.g. lstmgan, which get only this part):
    N generated samples and the split's windows are measured with the domain's metrics (for MIDI: pitch
    range, pitch classes, polyphony, empty beats, groove, repetitions, note density...), and each metric's two
    distributions are compared by their overlapping area (1 = indistinguishable, 0 = disjoint; MGEval).
    `mean_overlap` averages them. Then the sample judge: a classifier trained to tell generated excerpts from
    held-out real ones on the domain's features (for MIDI: 16-beat excerpts, their texture, note lengths,
    onsets in the beat, pitch classes, voice motion, dissonance), its held-out balanced accuracy over 5 folds
    (0.5 = indistinguishable, 1 = every sample gives itself away) beside the same figure for two halves of the
    real data (the floor), and each feature's overlap.

    The figures are also stored in RUN_DIR/evaluation-SPLIT.json (for `seqstudio report`).
    """
    from . import api

    _setup_logging(quiet=as_json or quiet)
    quiet = quiet or as_json
    run = api.load(run_dir, device=device, which=checkpoint)
    likelihood = run.backend.has_likelihood
    if n_samples is None:
        n_samples = 0 if likelihood else 100
    if not likelihood and n_samples == 0:
        raise click.UsageError(f"backend {run.spec.backend_name!r} has no likelihood; "
                               f"evaluate it with --samples N (N >= 1)")
    options = {"iw_samples": iw_samples} if iw_samples else {}
    result = (api.evaluate(run, data_dir, split=split, progress=not quiet, seed=seed, **options)
              if likelihood else {})
    if n_samples:
        result.update(api.evaluate_samples(run, data_dir, split=split, n=n_samples, seed=seed,
                                           temperature=temperature, progress=not quiet))
        listened = api.evaluate_conditions(run, data_dir, split=split, n=n_samples, seed=seed,
                                           temperature=temperature, progress=not quiet)
        if listened:  # conditions: did the model do as asked?
            result["conditions"] = listened
            curve = api.evaluate_guidance(run, data_dir, split=split, n=n_samples, seed=seed,
                                          temperature=temperature, progress=not quiet)
            if curve:  # ... and how much more with classifier-free guidance, at what cost in realism
                result["guidance"] = curve
        from . import recognition

        if run.backend.text_spec is not None:  # text: does it write what it is asked? (needs a recogniser)
            if recognition.has_recogniser(run):
                result["text"] = recognition.evaluate_text(run, data_dir, split=split, n=n_samples, seed=seed,
                                                           temperature=temperature, progress=not quiet)
            else:  # the other figures still stand; say how to get this one
                result["text"] = {"skipped": recognition.MISSING.format(run=run.path)}
    api.record_json(Path(run_dir) / f"evaluation-{split}.json", {**result, "checkpoint": checkpoint})
    if as_json:
        click.echo(json.dumps(result))
        return
    if likelihood:
        click.echo(f"{result['backend']} on the {split} split of {result['data']}: {result['files']} files, "
                   f"{result['windows']} windows, {result['steps']} steps")
        for key, value in result.items():
            if isinstance(value, float) and key not in ("mean_overlap", "temperature"):
                click.echo(f"  {key:<12} {value:.4f}")
    if n_samples:
        click.echo(f"{result['backend']}: {result['samples']} samples (temperature {temperature:g}) vs "
                   f"{result['reference_windows']} windows of the {split} split of {result['data']}")
        click.echo(f"  {'metric':<22} {'overlap':>7}   {'generated':>15}   {'held-out':>15}")
        for name, row in result["sample_metrics"].items():
            click.echo(f"  {name:<22} {row['overlap']:>7.3f}   {row['generated_mean']:>7.3f} "
                       f"±{row['generated_std']:<6.3f}   {row['reference_mean']:>7.3f} ±{row['reference_std']:<6.3f}")
        click.echo(f"  {'mean_overlap':<22} {result['mean_overlap']:>7.3f}")
        _echo_judge(result.get("judge") or {})
    for name, row in result.get("conditions", {}).items():
        click.echo(f"  condition {name}: as asked {row['asked']:.3f} (unconditional {row['unconditional']:.3f}, "
                   f"held-out real {row['held_out']:.3f}; {row['samples']} samples)")
    if result.get("guidance"):
        _echo_guidance(result["guidance"])
    if "text" in result:
        _echo_text_figures(result["text"])


def _echo_guidance(curve: dict) -> None:
    """Adherence and the sample judge's accuracy against the guidance scale (``api.evaluate_guidance``)."""
    click.echo(f"  classifier-free guidance, {curve['samples']} samples per scale:")
    click.echo(f"    {'--guidance W':<34}{''.join(f'{w:>8g}' for w in curve['scales'])}")
    for name, shares in curve["adherence"].items():
        click.echo(f"    {name + ' as asked':<34}{''.join(f'{v:>8.3f}' for v in shares)}   "
                   f"(held-out real {curve['held_out'][name]:.3f})")
    click.echo(f"    {'judge accuracy (0.5 = real)':<34}{''.join(f'{v:>8.3f}' for v in curve['judge_accuracy'])}")


def _echo_text_figures(text: dict) -> None:
    if "skipped" in text:
        click.echo(f"  text: not read back: {text['skipped']}")
        return
    click.echo(f"  text, {text['lines']} {text['split']} lines read back by the run's recogniser (character "
               f"error rate; lower is better): real lines {text['real_cer']:.3f}")
    for key, row in text.items():
        if key.startswith("bias_"):
            extra = "".join(f", {k} {v:.3f}" for k, v in row.items() if k.startswith("dtw"))
            click.echo(f"    generated, bias {key[5:]}: {row['cer']:.3f} (against another line's text "
                       f"{row['cer_other_text']:.3f}{extra})")
    if "style_primed" in text:
        row = text["style_primed"]
        click.echo(f"    style-primed ({row['style_file']}), bias {row['bias']:g}: {row['cer']:.3f}")


@main.command("train-recogniser")
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
    from . import api, recognition

    _setup_logging(quiet=quiet)
    run = api.load(run_dir)
    figures = recognition.train(run, data_dir, max_minutes=0 if max_steps else max_minutes,
                                max_steps=max_steps or 0, seed=seed, progress=not quiet)
    click.echo(f"recogniser stored in {Path(run_dir) / recognition.FOLDER}: {figures['steps']} steps, "
               f"{figures['cpu_minutes']:.1f} CPU minutes, valid CER {figures['valid_cer']:.3f}"
               + (f", test CER {figures['test_cer']:.3f} (against another line's text "
                  f"{figures['test_cer_other_text']:.3f})" if "test_cer" in figures else ""))


JUDGE_ROWS = 10  # features shown by `evaluate`: the domain's highlights, then the lowest overlaps (--json: all)


def _echo_judge(verdict: dict) -> None:
    """The sample judge's verdict (``seqstudio.judge``) as a few lines under the metrics table."""
    if not verdict.get("available"):
        click.echo(f"  judge: {verdict.get('reason', 'no judge')}")
        return
    floor = verdict["floor"]
    click.echo(f"  judge ({verdict['unit']}, {verdict['per_side']} generated vs {verdict['per_side']} real, "
               f"{verdict['folds']} folds): a classifier tells them apart with balanced accuracy "
               f"{verdict['accuracy']:.3f} ±{verdict['accuracy_spread']:.3f} (0.5 = indistinguishable; "
               f"real vs real {floor['accuracy']:.3f} ±{floor['accuracy_spread']:.3f})")
    if verdict.get("reason"):
        click.echo(f"  judge: {verdict['reason']}")
    features = verdict["features"]
    shown = list(verdict.get("highlights", []))
    shown += sorted((n for n in features if n not in shown), key=lambda n: features[n].get("overlap", 1.0))
    shown = shown[:max(JUDGE_ROWS, len(verdict.get("highlights", [])))]
    click.echo(f"  {'judge feature':<22} {'overlap':>7} {'floor':>6}   {'generated':>15}   {'real':>15}")
    for name in shown:
        row = features[name]
        click.echo(f"  {name:<22} {row['overlap']:>7.3f} {row['floor_overlap']:>6.3f}   "
                   f"{row['generated_mean']:>7.3f} ±{row['generated_std']:<6.3f}   "
                   f"{row['reference_mean']:>7.3f} ±{row['reference_std']:<6.3f}")
    if len(features) > len(shown):
        click.echo(f"  ({len(features) - len(shown)} more judge features with --json)")


# -- report, plot -----------------------------------------------------------------------------------------------------
@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Folder for the page (index.html and the pictures and audio beside it). Default: RUN_DIR/report.")
@click.option("--samples", "sample_dirs", multiple=True, type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Also show the samples in this folder (e.g. `generate`'s output; repeatable).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def report(run_dir, out_dir, sample_dirs, quiet):
    """Write RUN_DIR as one static page: configuration, data, training curves, evaluation, and every sample
    with its picture and audio. It opens from disk in any browser; nothing is fetched from the network."""
    from .report import write_run_report

    _setup_logging(quiet)
    page = write_run_report(run_dir, out_dir, list(sample_dirs), progress=not quiet)
    click.echo(f"report: {page}")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), default=Path("curves.png"),
              show_default=True, help="Picture to write: .png (needs matplotlib) or .svg.")
def plot(run_dir, out):
    """Training and validation curves of RUN_DIR (every figure in metrics.jsonl: loss, KL, ELBO, lr...)."""
    from .plotting import write_curves

    click.echo(f"wrote {write_curves(run_dir, out)}")


# -- plugins -------------------------------------------------------------------------------------------------------------
@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--check", is_flag=True, help="Import every plugin now, even those that loaded before and whose file "
                                            "has not changed since (their description is remembered).")
def plugins(as_json, check):
    """List installed domains, backends and data-recipe source types, where they come from, and any that fail
    to load.

    A plugin that loaded before, and whose file and version are unchanged, is listed from memory (in the cache
    folder) instead of being imported again: importing the backends imports torch, which takes seconds."""
    from dataclasses import asdict

    from . import registry

    kinds = ("domain", "backend", "recipe source")
    memo = {} if check else registry.read_plugin_memo()
    before = dict(memo)
    infos = [info for kind in kinds for info in registry.describe(kind, memo)]
    if memo != before:
        registry.write_plugin_memo(memo)
    if as_json:
        click.echo(json.dumps([asdict(i) for i in infos], indent=2))
        return
    for kind in kinds:
        click.echo(f"{kind}s:")
        rows = [i for i in infos if i.kind == kind]
        if not rows:
            click.echo("  (none installed)")
        width = max([10] + [len(i.name) for i in rows])
        for i in rows:
            status = f"BROKEN: {i.error}" if i.error else i.description
            click.echo(f"  {i.name:<{width}} {i.distribution} {i.version:<8} {i.value}")
            if status:
                click.echo(f"  {'':<{width}} {status}")


# -- data ------------------------------------------------------------------------------------------------------------------
@main.group(cls=_Group)
def data():
    """List and build data recipes (datasets seqstudio knows how to fetch or prepare)."""


@data.command("list")
def data_list():
    """List the available data recipes."""
    from . import recipes

    _setup_logging()
    for recipe in recipes.list_recipes():
        need = " (needs --source)" if recipe.needs_source else ""
        click.echo(f"{recipe.name:<16} {recipe.domain:<8} {recipe.description}{need}")


@data.command("build")
@click.argument("name")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--source", type=click.Path(path_type=Path), help="Your copy of the data, for recipes that need one.")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="Build N files in all, shared among the splits as in the whole set (0 = all).")
@click.option("--workers", type=click.IntRange(min=0), default=0, help="Parallel processes (0 = one per core).")
@click.option("--quiet", "-q", is_flag=True)
def data_build(name, dest, source, limit, workers, quiet):
    """Materialise recipe NAME as files in DEST (ready for `seqstudio train DEST`)."""
    from . import recipes

    _setup_logging(quiet)
    result = recipes.build(name, dest, source=source, limit=limit, workers=workers, progress=not quiet)
    extra = f", skipped {result['skipped']} unreadable" if result["skipped"] else ""
    click.echo(f"wrote {result['written']} files to {result['dest']}{extra}")


# -- cache -----------------------------------------------------------------------------------------------------------------
@main.group(cls=_Group)
def cache():
    """See and clear the encoding cache ($SEQSTUDIO_CACHE, default ~/.cache/seqstudio)."""


@cache.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def cache_info(as_json):
    """Size of the cache, and per dataset: domain, codec, source folder, files, shards, size, last use."""
    import time

    from . import cache as cache_mod
    from .cache import cache_dir

    report = cache_mod.info(cache_dir())
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    size = cache_mod.human_bytes
    click.echo(f"{report['path']}: {size(report['bytes'])} in {len(report['datasets'])} dataset(s)")
    if report["prepared"]["runs"]:
        click.echo(f"  prepared  {report['prepared']['runs']} stored preparation(s) of warm starts  "
                   f"{size(report['prepared']['bytes'])}")
    for d in report["datasets"]:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(d["last_used"])) if d["last_used"] else "-"
        old = f", {d['old_entries']} old-format entries" if d["old_entries"] else ""
        click.echo(f"  {d['key']}  {d['domain'] or '?'}/{d['codec'] or '?'}  {d['files']} files in {d['shards']} "
                   f"shard(s){old}  {size(d['bytes'])}  last used {used}  {', '.join(d['sources'])}")


@cache.command("clear")
@click.option("--older-than", metavar="AGE", help="Only what no run has used for AGE (e.g. 30d, 12h, 90m).")
def cache_clear(older_than):
    """Remove the encoding cache (only its own files); the next run encodes its files again."""
    from . import cache as cache_mod
    from .cache import cache_dir

    age = cache_mod.parse_age(older_than) if older_than is not None else None
    removed = cache_mod.clear(cache_dir(), age)
    click.echo(f"removed {removed['shards']} shard(s) and {removed['old_entries']} old-format entries "
               f"({cache_mod.human_bytes(removed['bytes'])}) from {cache_dir()}")


if __name__ == "__main__":
    main()
