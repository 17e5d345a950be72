"""Does a text-conditioned run write what it is asked? Read its lines back with a recogniser and count errors.

A likelihood or a DTW distance cannot say which letters are wrong; a recogniser can (the handwriting
literature's content score and character error rate). The recogniser itself comes from the domain
(``Domain.text_recogniser``: for strokes, a CTC model of online handwriting), is trained on the run's own data
folder by ``seqstudio train-recogniser RUN`` and stored with the run (``RUN/recogniser/``), so the judge and
the judged share their alphabet and their data.

``evaluate_text`` reports, on ``n`` texts of a held-out split:
* ``real_cer``: the recogniser's CER on the real lines (the ceiling: what a perfect writer would get);
* per sampling bias, ``cer`` of generated lines against their asked texts and ``cer_other_text`` against
  another line's text (chance: what a model that ignores its text would get), with the domain's
  recogniser-free content figures beside them (strokes: DTW to typeset renderings);
* ``style_primed_cer``: the same texts written after a real line given as a style prime (``--style``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch

from .. import text_condition as text_mod
from ..cer import character_error_rate
from ..errors import ConfigError, DataError, RunDirError, SeqStudioError
from . import text_lines

log = logging.getLogger("seqstudio")

FOLDER = "recogniser"
BIASES = (0.0, 2.0)  # unbiased and Graves' neat sampling: the issue's two settings
EXAMPLES = 6  # (asked, read) pairs kept per setting for the report


def text_spec_or_refuse(run) -> text_mod.TextSpec:
    spec = run.fitted.text
    if spec is None:
        raise ConfigError(f"{run.path} is not conditioned on text: a recogniser judges runs trained with "
                          f"train.text (e.g. on the hershey-script recipe)")
    return spec


def labelled_lines(run, data_dir, split: str) -> list[tuple[Any, str, Path]]:
    """``split``'s files of the run's data folder (or ``data_dir``) read by the run's domain, each with the text
    it says (``(sample, text, path)``); files without text or that cannot be read are left out."""
    from .. import data

    attribute = text_spec_or_refuse(run).attribute
    spec = run.spec.with_data_path(data_dir) if data_dir is not None else run.spec
    t = spec.train
    files = data.split_files(spec.data_path, run.domain, t.valid_fraction, t.test_fraction)
    out, unreadable = [], 0
    for path in files[split]:
        if run.domain.is_collection(path):
            continue
        try:
            sample = run.domain.read(path)
        except SeqStudioError:
            unreadable += 1
            continue
        text = run.domain.attributes(sample, path).get(attribute)
        if text:
            out.append((sample, text, path))
    if unreadable:
        log.warning("recogniser: %d %s files could not be read and were left out", unreadable, split)
    return out


def _recogniser_of(run):
    return run.domain.text_recogniser(text_spec_or_refuse(run).alphabet)


def train(run, data_dir=None, *, max_minutes: float = 10.0, max_steps: int = 0, seed: int = 0,
          progress: bool = True) -> dict[str, Any]:
    """Fit the domain's recogniser on the run's training lines (best validation CER kept), measure it on the test
    lines, and store it in ``RUN/recogniser/``. Returns its figures."""
    model = _recogniser_of(run)
    if model is None:
        raise ConfigError(f"domain {run.domain.name!r} has no text recogniser")
    lines = {split: [(s, t) for s, t, _ in labelled_lines(run, data_dir, split)] for split in ("train", "valid", "test")}
    if not lines["train"]:
        raise DataError("no training lines with text to fit a recogniser on")

    def report(step, figures):
        if progress:
            log.info("recogniser step %d: loss %.3f, valid CER %.3f", step, figures["loss"], figures["valid_cer"])

    from .. import runlock

    folder = Path(run.path) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    with runlock.hold(folder, "train-recogniser"):  # one writer of RUN/recogniser (training may still run)
        figures = model.fit(lines["train"], lines["valid"], max_minutes=max_minutes, max_steps=max_steps,
                            seed=seed, progress=report)
        _measure_and_save(model, figures, lines["test"], folder)
    return figures


def _measure_and_save(model, figures: dict, test: list, folder: Path) -> None:
    if test:
        figures["test_cer"] = round(model.cer(test), 4)
        shifted = [(s, test[(i + 1) % len(test)][1]) for i, (s, _) in enumerate(test)]
        figures["test_cer_other_text"] = round(model.cer(shifted), 4)
        figures["test_lines"] = len(test)
    model.figures = figures
    model.save(folder)


MISSING = ("{run} has no recogniser yet: `seqstudio train-recogniser {run}` trains one on the run's data "
           "(about 10 CPU minutes)")


def has_recogniser(run) -> bool:
    return (Path(run.path) / FOLDER).is_dir()


def load(run):
    """The run's stored recogniser, or a RunDirError saying how to train one."""
    folder = Path(run.path) / FOLDER
    if not folder.is_dir():
        raise RunDirError(MISSING.format(run=run.path))
    from ..runcheck import refuse_link

    for entry in (folder, *sorted(folder.iterdir())):  # as everywhere in a run directory: no reading through links
        refuse_link(entry)
    return run.domain.load_text_recogniser(folder)


def evaluate_text(run, data_dir=None, split: str = "test", n: int = 100, seed: int = 0, temperature: float = 1.0,
                  biases=BIASES, style: bool = True, progress: bool = True) -> dict[str, Any]:
    """CER of generated lines against their asked texts, beside the real lines' CER (ceiling) and the CER against
    other texts (chance), for each sampling bias; see the module's docstring."""
    recogniser = load(run)
    real = labelled_lines(run, data_dir, split)
    if not real:
        raise DataError(f"the {split} split holds no lines with text to ask for")
    if len(real) > n:
        pick = sorted(torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:n].tolist())
        real = [real[i] for i in pick]
    spec = text_spec_or_refuse(run)
    asked = [t for _, t, _ in real]
    asked = ["".join(c for c in t if c in spec.alphabet) or t for t in asked]  # what the model can be asked
    other = asked[1:] + asked[:1]
    result: dict[str, Any] = {"lines": len(asked), "split": split, "temperature": temperature,
                              "real_cer": round(recogniser.cer([(s, t) for (s, _, _), t in zip(real, asked)]), 4),
                              "recogniser": {k: v for k, v in recogniser.figures.items() if k != "history"}}
    for bias in biases:
        if progress:
            log.info("writing %d lines at bias %g", len(asked), bias)
        lines = text_lines.generate_lines(run, asked, seed=seed, bias=bias, temperature=temperature)
        read = recogniser.read(lines)
        row = {"cer": round(character_error_rate(read, asked), 4),
               "cer_other_text": round(character_error_rate(read, other), 4),
               "examples": [{"asked": a, "read": r} for a, r in zip(asked[:EXAMPLES], read[:EXAMPLES])]}
        row.update({k: round(v, 4) for k, v in run.domain.content_figures(lines, asked, asked).items()
                    if isinstance(v, float) and math.isfinite(v)})
        result[f"bias_{bias:g}"] = row
    if style:
        train_lines = labelled_lines(run, data_dir, "train")
        if train_lines:
            _, style_text, style_path = train_lines[0]
            bias = biases[-1]
            lines = text_lines.generate_lines(run, asked, style=style_path, style_text=style_text, seed=seed,
                                                 bias=bias, temperature=temperature)
            read = recogniser.read(lines)
            result["style_primed"] = {"cer": round(character_error_rate(read, asked), 4), "bias": bias,
                                      "style_file": style_path.name, "style_text": style_text}
    return result
