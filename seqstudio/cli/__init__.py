"""The ``seqstudio`` command: a thin click layer over ``seqstudio.api``.

Library errors (``SeqStudioError``) become one ``Error: ...`` line and exit status 1; nothing a user can
cause by bad input should ever print a traceback (``shell``). One module per family of commands: ``training``,
``generating``, ``evaluating``, ``inspecting``, ``housekeeping``.
"""

from __future__ import annotations

import click

from .evaluating import evaluate
from .generating import generate
from .housekeeping import cache, data, plugins
from .inspecting import convert, info, plot, render, report, studio
from .shell import Group, quiet_bars_in_logs
from .training import train, train_recogniser


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
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
    quiet_bars_in_logs()


for command in (train, generate, studio, info, render, convert, evaluate, train_recogniser, report, plot, plugins, data,
                cache):
    main.add_command(command)
