"""Commands that look at runs and files: ``info``, ``render``, ``convert``, ``report``, ``plot``, ``studio``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..model_commands import EXISTING_RUN, RUN  # a model's name or an exported folder works as a RUN
from .shell import only_regular_files, setup_logging


# -- studio ------------------------------------------------------------------------------------------------------------
@click.command()
@click.argument("runs", nargs=-1, required=True, type=EXISTING_RUN)
@click.option("--port", type=click.IntRange(min=1, max=65535), default=8765, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but this computer's own lets others on the network use it.")
def studio(runs, port, host):
    """A local web page to play with RUNS: generate, listen, look, write a line in your own hand."""
    from .. import studio as studio_mod

    setup_logging()
    studio_mod.serve(list(runs), host=host, port=port, announce=click.echo)


# -- info (conditions) ---------------------------------------------------------------------------------------------------
@click.command()
@click.argument("run_dir", type=RUN)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(run_dir, as_json):
    """What RUN_DIR is: domain, codec, backend, and the conditions `generate --condition` accepts."""
    from ..run_summary import summary  # the run's files as written: no torch, no plugin import

    setup_logging(quiet=as_json)
    result = summary(run_dir)
    if as_json:
        click.echo(json.dumps(result))
        return
    where = f"{result['model']} (a model, unpacked into {result['run_dir']})" if result["model"] else result["run_dir"]
    click.echo(f"{where}: {result['domain']} / {result['codec']} / {result['backend']}")
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
@click.command()
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False),
              help="PNG picture or WAV audio to write (by its extension). Default: FILE's name with .png, in the "
                   "current folder.")
@click.option("--domain", help="Domain plugin that reads FILE. Default: guessed from the file type.")
@click.option("--limit", type=click.IntRange(min=1), default=16, show_default=True,
              help="Samples drawn from a file that holds many (e.g. a QuickDraw .npz), as one sheet.")
@click.option("--soundfont", type=click.Path(path_type=Path, exists=True, dir_okay=False), callback=only_regular_files,
              help="SoundFont (.sf2/.sf3) for audio. Default: the General MIDI one shipped with pretty_midi.")
def render(file, out, domain, limit, soundfont):
    """Draw FILE (a drawing, a handwriting line, a MIDI file...) as a PNG picture, or play it into a WAV file.

    \b
      seqstudio render song.mid -o song.png
      seqstudio render song.mid -o song.wav [--soundfont MyGM.sf2]
    """
    from .. import api

    setup_logging()
    for path in api.render_file(file, out, domain=domain, limit=limit, soundfont=soundfont):
        click.echo(f"wrote {path}")


# -- convert ---------------------------------------------------------------------------------------------------------
@click.command()
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
    from .. import api

    setup_logging()
    api.convert_file(src, dest, domain=domain)
    click.echo(f"wrote {dest}")


# -- report, plot -----------------------------------------------------------------------------------------------------
@click.command()
@click.argument("run_dir", type=EXISTING_RUN)
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Folder for the page (index.html and the pictures and audio beside it). Default: RUN_DIR/report.")
@click.option("--samples", "sample_dirs", multiple=True, type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Also show the samples in this folder (e.g. `generate`'s output; repeatable).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def report(run_dir, out_dir, sample_dirs, quiet):
    """Write RUN_DIR as one static page: configuration, data, training curves, evaluation, and every sample
    with its picture and audio. It opens from disk in any browser; nothing is fetched from the network."""
    from ..report import write_run_report

    setup_logging(quiet)
    page = write_run_report(run_dir, out_dir, list(sample_dirs), progress=not quiet)
    click.echo(f"report: {page}")


@click.command()
@click.argument("run_dir", type=EXISTING_RUN)
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), default=Path("curves.png"),
              show_default=True, help="Picture to write: .png (needs matplotlib) or .svg.")
def plot(run_dir, out):
    """Training and validation curves of RUN_DIR (every figure in metrics.jsonl: loss, KL, ELBO, lr...)."""
    from ..plotting import write_curves

    click.echo(f"wrote {write_curves(run_dir, out)}")
