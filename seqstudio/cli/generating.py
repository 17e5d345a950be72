"""``seqstudio generate``: new files from a trained run (samples, continuations, interpolations, lines of text)."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import TEXT_BIAS
from ..model_commands import RUN  # a model's name or an exported folder works as a RUN
from .shell import only_regular_files, setup_logging


# -- generate ----------------------------------------------------------------------------------------------------------
@click.command()
@click.argument("run_dir", type=RUN)
@click.option("-n", "num", type=click.IntRange(min=1, max=100_000), default=4, show_default=True,
              help="Number of samples (at most 100000; written to disk in batches as they are made).")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), default=Path("generated"), show_default=True,
              help="Output folder.")
@click.option("--temperature", "-t", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Sampling temperature; 0 = most likely value at each step.")
@click.option("--length", type=click.IntRange(min=1),
              help="Steps to generate (at most 100000). Default: the training window (if at most 10000).")
@click.option("--seed", type=int, help="Random seed for reproducible samples.")
@click.option("--prime", type=click.Path(path_type=Path, exists=True, dir_okay=False), callback=only_regular_files,
              help="Start every sample with this file; the output holds the prime followed by the continuation.")
@click.option("--interpolate", nargs=2, type=click.Path(path_type=Path, exists=True, dir_okay=False),
              callback=only_regular_files, metavar="A B", help="Decode points on the latent path between files A and B (seq-VAE).")
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
@click.option("--soundfont", type=click.Path(path_type=Path, exists=True, dir_okay=False), callback=only_regular_files,
              help="SoundFont (.sf2/.sf3) for --audio. Default: the General MIDI one shipped with pretty_midi.")
@click.option("--report", is_flag=True, help="Also write a page showing every sample (picture, audio, text) "
                                             "into OUT/report/index.html.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or info lines.")
@click.option("--condition", "conditions", multiple=True, metavar="NAME=VALUE",
              help="Ask a conditional run for an attribute value (repeatable), e.g. key=G:minor, meter=3/4, "
                   "label=cat; `seqstudio info RUN` lists them. Default: drawn from the training data.")
@click.option("--text", "texts", multiple=True, metavar="TEXT",
              help="Text-conditioned runs: write this line (repeatable, one output line each).")
@click.option("--style", type=click.Path(path_type=Path, exists=True, dir_okay=False), callback=only_regular_files,
              help="With --text: a line you wrote (InkML, IAM XML, SVG, stroke-3 npz) whose hand to imitate.")
@click.option("--style-text", help="What the --style line says.")
@click.option("--height-mm", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="With --text: height of each line's plotter SVG, in millimetres.")
@click.option("--harmonize", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              callback=only_regular_files, help="Keep this melody (one line) note for note as the top voice and "
              "write the others around it (a run that can fill in: --backend coconet --codec voices).")
@click.option("--voice", help="With --harmonize: the voice the melody is (default: the top one; e.g. bass).")
@click.option("--infill", "infill_file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              callback=only_regular_files, help="Regenerate --bars of this file given what comes before and after.")
@click.option("--bars", metavar="FIRST-LAST", help="With --infill: the bars to regenerate, e.g. 5-8 (from 1).")
def generate(run_dir, num, out_dir, temperature, length, seed, prime, interpolate, steps, checkpoint, device,
             bias, top_k, top_p, guidance, no_pictures, audio, soundfont, report, quiet, conditions, texts, style,
             style_text, height_mm, harmonize, voice, infill_file, bars):
    """Generate new files from a trained RUN_DIR into --out."""
    from .. import api

    setup_logging(quiet)
    if soundfont and not audio:
        raise click.UsageError("--soundfont is for --audio")
    from ..backends.base import SamplingOptions

    SamplingOptions(top_k=top_k, top_p=top_p, guidance=guidance)  # bad values: refused before any output folder
    from .filling import check_fill_options, generate_filled

    check_fill_options(harmonize, voice, infill_file, bars, prime, interpolate, texts)
    run = api.load(run_dir, device=device, which=checkpoint)
    if harmonize or infill_file:  # seqstudio.filling: around given notes, not after a prime
        return generate_filled(run, out_dir, num, seed, temperature, top_k, top_p, not no_pictures, audio, soundfont,
                               quiet, harmonize=harmonize, voice=voice, infill_file=infill_file, bars=bars)
    from ..guidance import check_guidance

    check_guidance(guidance, api.conditions_of(run), run.backend.text_spec is not None, run.backend)
    from ..run_summary import checkpoint_note

    note = checkpoint_note(run_dir, checkpoint, run.checkpoint.get("state", {}))  # said once the files are written
    if texts or style or style_text:  # text: handwriting from text (api.generate's text path)
        lines = api.generate(run, texts=list(texts), style=style, style_text=style_text, temperature=temperature,
                             bias=TEXT_BIAS if bias is None else bias, seed=seed, length=length, top_k=top_k,
                             top_p=top_p)
        paths = api.write_samples(run, lines, out_dir, height_mm=height_mm)
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
        from ..report import write_gallery

        page = write_gallery(run.domain, out_dir, progress=not quiet)
        click.echo(f"report: {page}")


GENERATE_BATCH = 256  # samples made and written at a time: memory stays bounded whatever -n is


def _generate_in_batches(run, num, out_dir, prefix, render, audio, soundfont, quiet, seed=None, **options):
    """``generate -n NUM`` made and written ``GENERATE_BATCH`` samples at a time into one staged set (nothing
    is kept in memory but the current batch). Batch ``b`` uses seed ``seed + b``, so ``-n`` up to a batch gives
    the samples it always did."""
    from .. import api
    from ..outputs import staged_output

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
