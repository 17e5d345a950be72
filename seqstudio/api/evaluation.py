"""``evaluate``: everything ``seqstudio evaluate`` reports about a run, decided here so that a Python caller gets
the same figures and the same record as the command.

What is measured follows from the run: the held-out likelihood when the backend has one (``likelihood``); with
``samples`` (the default, 100, for a backend without a likelihood, which gets only this part) generated samples
against held-out windows (``sample_judging``), and for a conditional run whether it listened and, where it can be
guided, at what cost in realism (``condition_checks``); for a text-conditioned run, whether its lines say what was
asked (``text_reading``, when the run has a recogniser; else why not). The result is also stored in
``RUN/evaluation-SPLIT.json`` (for ``seqstudio report``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..rundir import Run
from . import text_reading
from .condition_checks import evaluate_conditions, evaluate_guidance
from .likelihood import evaluate_likelihood
from .sample_judging import evaluate_samples
from .training import record_json

SAMPLES_WITHOUT_LIKELIHOOD = 100  # samples judged by default for a backend without a likelihood (lstmgan)


def evaluate(run: Run, data_dir: str | Path | None = None, split: str = "test", *, samples: int | None = None,
             temperature: float = 1.0, iw_samples: int | None = None, seed: int = 0, batch_size: int = 64,
             progress: bool = True, record: bool = True) -> dict[str, Any]:
    """The run's held-out figures on ``split`` of ``data_dir`` (default: the folder it was trained on).

    ``samples``: judge that many generated samples too (None: 0 for a backend with a likelihood, else
    ``SAMPLES_WITHOUT_LIKELIHOOD``; 0 for a backend without one is a ConfigError: it has nothing else to
    report). ``iw_samples``: also the importance-weighted bound with that many samples (backends with
    latents). ``record``: store the result, with the checkpoint it is of, in ``RUN/evaluation-SPLIT.json``."""
    likelihood = run.backend.has_likelihood
    if samples is None:
        samples = 0 if likelihood else SAMPLES_WITHOUT_LIKELIHOOD
    if not likelihood and samples == 0:
        raise ConfigError(f"backend {run.spec.backend_name!r} has no likelihood; evaluate it with --samples N "
                          f"(N >= 1)")
    options = {"iw_samples": iw_samples} if iw_samples else {}
    result = (evaluate_likelihood(run, data_dir, split=split, batch_size=batch_size, progress=progress, seed=seed,
                                  **options) if likelihood else {})
    if samples:
        judged = dict(data_dir=data_dir, split=split, n=samples, seed=seed, temperature=temperature,
                      progress=progress)
        result.update(evaluate_samples(run, **judged))
        listened = evaluate_conditions(run, **judged)
        if listened:  # conditions: did the model do as asked?
            result["conditions"] = listened
            curve = evaluate_guidance(run, **judged)
            if curve:  # ... and how much more with classifier-free guidance, at what cost in realism
                result["guidance"] = curve
        if run.backend.text_spec is not None:  # text: does it write what it is asked? (needs a recogniser)
            if text_reading.has_recogniser(run):
                result["text"] = text_reading.evaluate_text(run, **judged)
            else:  # the other figures still stand; say how to get this one
                result["text"] = {"skipped": text_reading.MISSING.format(run=run.path)}
    if record:
        record_json(Path(run.path) / f"evaluation-{split}.json", {**result, "checkpoint": run.which})
    return result
