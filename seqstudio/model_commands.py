"""The commands for models that ship and travel: ``models``, ``export``, ``write``, and the RUN argument type.

``cli.py`` adds these commands to its group and gives every RUN argument the ``RUN`` type, so a model's name or an
exported folder works wherever a run directory does (``seqstudio.models.resolve``). Nothing here imports torch
until a command runs (``tests/test_startup.py``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import click

from .errors import SeqStudioError

WRITER = "hershey-script"  # the shipped handwriting model `seqstudio write` uses by default


class RunArgument(click.ParamType):
    """A run directory, an exported model folder or an installed model's name, resolved to a run directory."""

    name = "RUN"

    def __init__(self, must_exist: bool = False):
        self.must_exist = must_exist  # the commands whose argument was click.Path(exists=True) keep that check

    def convert(self, value, param, ctx):
        from .models import resolve

        try:
            path = resolve(value)
        except SeqStudioError as exc:
            self.fail(str(exc), param, ctx)
        if self.must_exist and not path.is_dir():
            self.fail(f"{value} is not a run directory, an exported model folder or an installed model's name "
                      f"(`seqstudio models` lists them)", param, ctx)
        return path


RUN = RunArgument()
EXISTING_RUN = RunArgument(must_exist=True)


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: name -> headline and folder.")
def models_command(as_json):
    """The trained models installed with seqstudio (and by third-party packages), with their cards' headlines.

    Each name works wherever a RUN is accepted: `seqstudio generate bach-chorales -n 8 --audio`,
    `evaluate`, `report`, `info`, `studio`, `train DATA --from NAME`. Each model's card (MODEL.md in its folder)
    says what it learned from, the command that trained it and its figures."""
    from .models import installed

    found = installed()
    if as_json:
        click.echo(json.dumps({name: {"headline": m.headline, "path": str(m.path), "provider": m.provider}
                               for name, m in sorted(found.items())}))
        return
    if not found:
        click.echo("no models installed (the seqstudio-models distribution ships some: `make install`)")
        return
    width = max(len(name) for name in found)
    for name, info in sorted(found.items()):
        click.echo(f"{name:<{width}}  {info.headline}")


@click.command("export")
@click.argument("run_dir", type=RUN)
@click.argument("dest", type=click.Path(path_type=Path, file_okay=False))
@click.option("--dtype", type=click.Choice(["float32", "float16"]),
              help="Precision of the weights. Default: float32 (a model loaded from an exported folder: its own).")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
def export_command(run_dir, dest, dtype, checkpoint):
    """Write RUN_DIR into DEST in the Hugging Face Hub layout: config.json, model.safetensors (weights only),
    codec.json (the codec's state) and MODEL.md (the card). Any Hub client uploads it; DEST then works wherever
    a RUN is accepted, and loading it never executes code."""
    from .export import export_run

    out = export_run(run_dir, dest, dtype=dtype, which=checkpoint)
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    click.echo(f"exported {run_dir} to {out} ({size / 1e6:.2f} MB)")


@click.command("write")
@click.argument("text")
@click.option("-o", "--out", type=click.Path(path_type=Path, dir_okay=False), default=Path("line.svg"),
              show_default=True, help="The line's file: .svg (a plotter's single-stroke paths) or .png.")
@click.option("--model", "run_dir", type=RUN, default=WRITER, show_default=True,
              help="A handwriting-from-text model: an installed name, a run or an exported folder.")
@click.option("--style", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A line in your hand (SVG, InkML, ...) to write in its style; needs --style-text.")
@click.option("--style-text", help="What the --style line says.")
@click.option("--bias", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Sampling bias (Graves 2013): higher is neater and more legible, 0 is as trained.")
@click.option("--seed", type=int, default=0, show_default=True, help="Another seed, another line.")
@click.option("--height-mm", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Height of the SVG's line on paper.")
def write_command(text, out, run_dir, style, style_text, bias, seed, height_mm):
    """Write TEXT by hand: one line, in one command, with the shipped handwriting model (or --model)."""
    from . import api
    from .errors import ConfigError

    suffix = out.suffix.lower()
    if suffix not in (".svg", ".png"):
        raise ConfigError(f"-o {out}: write makes .svg or .png files")
    if bool(style) != bool(style_text):
        raise ConfigError("--style and --style-text go together: the line in your hand and what it says")
    run = api.load(run_dir)
    lines = api.generate(run, texts=[text], style=style, style_text=style_text, bias=bias, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".write-", dir=out.parent))
    try:
        written = api.write_samples(run, lines, stage / "lines", height_mm=height_mm)
        chosen = [p for p in written if p.suffix.lower() == suffix and p.name.startswith("line-")]
        if not chosen:
            raise ConfigError(f"the model's domain ({run.spec.domain}) writes no {suffix} line")
        shutil.move(str(chosen[0]), out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    click.echo(f"wrote {out}")


COMMANDS = (models_command, export_command, write_command)
