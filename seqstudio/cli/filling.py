"""``seqstudio generate RUN --harmonize melody.mid [--voice bass]`` and ``--infill FILE --bars 5-8``: the CLI's
side of ``seqstudio.filling`` (option checks and writing), so ``generating.py`` carries only the hook."""

from __future__ import annotations

from pathlib import Path

import click


def check_fill_options(harmonize, voice, infill_file, bars, prime, interpolate, texts) -> None:
    """Options that do not go together are refused before the run is loaded."""
    if voice and not harmonize:
        raise click.UsageError("--voice is for --harmonize")
    if bars and not infill_file:
        raise click.UsageError("--bars is for --infill")
    if infill_file and not bars:
        raise click.UsageError("--infill needs --bars FIRST-LAST (the bars to regenerate)")
    if harmonize and infill_file:
        raise click.UsageError("give --harmonize or --infill, not both")
    if (harmonize or infill_file) and (prime or interpolate or texts):
        raise click.UsageError("--harmonize / --infill fill in around given notes; they cannot be combined with "
                               "--prime, --interpolate or --text")


def generate_filled(run, out_dir: Path, num: int, seed, temperature: float, top_k: int, top_p: float, render: bool,
                    audio: bool, soundfont, quiet: bool, harmonize=None, voice=None, infill_file=None,
                    bars=None) -> None:
    """Harmonise or fill, write the files (and pictures), and say what was kept."""
    from .. import api, filling

    if harmonize:
        samples = filling.harmonize(run, harmonize, voice=voice, n=num, seed=seed, temperature=temperature,
                                   top_k=top_k, top_p=top_p)
        prefix, kept = "harmonized", f"{harmonize.name} is kept as the {voice or run.codec.voices[0]} voice"
    else:
        samples = filling.infill(run, infill_file, bars, n=num, seed=seed, temperature=temperature, top_k=top_k,
                                top_p=top_p)
        prefix, kept = "infilled", f"bars {bars} of {infill_file.name} are new, the rest is kept"
    paths = api.write_samples(run, samples, out_dir, prefix=prefix, render=render, audio=audio, soundfont=soundfont,
                              progress=not quiet)
    if not quiet:
        click.echo(kept)
        click.echo(f"wrote {len(paths)} files to {out_dir}")
