"""Did a conditional run listen? Condition judges against asked, unconditional and real values, and the
adherence-against-realism curve of classifier-free guidance."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..guidance import check_guidance
from ..rundir import Run
from .generation import generate
from .held_out import judge_reference, labelled_windows
from .sample_judging import judge_samples

log = logging.getLogger("seqstudio")


def condition_judges(run: Run, data_dir, seed: int, progress: bool) -> dict:
    """The domain's judge of each condition attribute it can judge (``Domain.condition_judges``), fitted on the
    training windows where it learns; {} for a run without embedded conditions."""
    cs = run.fitted.conditions
    if cs is None or not cs.conditions_backend:
        return {}
    return run.domain.condition_judges(cs.names, lambda: labelled_windows(run, data_dir, "train", 2000, seed,
                                                                           progress))


def _share_as_asked(judge, samples, targets) -> float:
    """The share of ``samples`` the attribute's ``judge`` finds as asked (``targets``; unasked ones left out)."""
    pairs = [(s, t) for s, t in zip(samples, targets) if t]
    return sum(judge(s) == t for s, t in pairs) / len(pairs) if pairs else float("nan")


def evaluate_conditions(run: Run, data_dir: str | Path | None = None, split: str = "test", n: int = 100,
                        seed: int = 0, temperature: float = 1.0, length: int | None = None,
                        max_reference: int = 1000, progress: bool = True) -> dict[str, Any]:
    """Did a conditional run listen? Per attribute the domain can judge (``Domain.condition_judges``): the share
    of ``n`` samples, asked for conditions drawn from the training distribution, that the judge finds as asked
    (``asked``); the same share for samples of the same seed generated with every condition unknown
    (``unconditional``: chance, the model's own unconditional mode); and the judge's agreement with the real
    values on ``split``'s windows (``held_out``: the ceiling, e.g. the classifier's held-out accuracy)."""
    cs = run.fitted.conditions
    judges = condition_judges(run, data_dir, seed, progress)
    if not judges:
        return {}
    held_out = labelled_windows(run, data_dir, split, max_reference, seed, progress)
    asked = cs.sample(n, torch.Generator().manual_seed(seed))
    with_c = generate(run, n=n, length=length, temperature=temperature, seed=seed, condition_index=asked)
    without = generate(run, n=n, length=length, temperature=temperature, seed=seed,
                       condition_index=torch.zeros_like(asked))
    out = {}
    for name, judge in judges.items():
        wanted = [labels.get(name) for labels in with_c.conditions]
        out[name] = {"asked": _share_as_asked(judge, with_c, wanted),
                     "unconditional": _share_as_asked(judge, without, wanted),
                     "held_out": _share_as_asked(judge, [s for s, _ in held_out],
                                                 [labels.get(name) for _, labels in held_out]),
                     "samples": sum(1 for t in wanted if t), "held_out_windows": len(held_out)}
    return out


GUIDANCE_CURVE = (0.0, 1.0, 2.0, 4.0)


def can_guide(run: Run) -> bool:
    """Whether ``--guidance`` other than 1 is open to this run (``seqstudio.guidance.check_guidance``)."""
    try:
        check_guidance(2.0, run.fitted.conditions, run.backend.text_spec is not None, run.backend)
    except ConfigError:
        return False
    return True


def evaluate_guidance(run: Run, data_dir: str | Path | None = None, split: str = "test", n: int = 100,
                      seed: int = 0, temperature: float = 1.0, length: int | None = None,
                      scales: tuple[float, ...] = GUIDANCE_CURVE, max_reference: int = 1000,
                      progress: bool = True) -> dict[str, Any]:
    """Adherence against the guidance scale, beside realism: for each scale, ``n`` samples asked for the same
    conditions (drawn from the training distribution, seeded) and the same seed; per judged attribute the share
    found as asked (``adherence``), and the sample judge's balanced accuracy against ``split``'s real windows
    (``judge_accuracy``; 0.5 = indistinguishable), since strong guidance can trade realism for adherence.
    ``held_out``: each attribute judge's agreement with the real values (the ceiling). {} for a run that cannot
    be guided (no embedded conditions, condition dropout 0, text-conditioned) or has no condition judge."""
    if not can_guide(run):
        return {}
    judges = condition_judges(run, data_dir, seed, progress)
    if not judges:
        return {}
    cs = run.fitted.conditions
    asked = cs.sample(n, torch.Generator().manual_seed(seed))
    real, pieces = judge_reference(run, data_dir, split, limit=max_reference, seed=seed, progress=False)
    held_out = labelled_windows(run, data_dir, split, max_reference, seed, progress)
    curve = {"scales": list(scales), "adherence": {name: [] for name in judges}, "judge_accuracy": [],
             "held_out": {name: _share_as_asked(judge, [s for s, _ in held_out],
                                                [labels.get(name) for _, labels in held_out])
                          for name, judge in judges.items()},
             "samples": n}
    for scale in scales:
        samples = generate(run, n=n, length=length, temperature=temperature, seed=seed, condition_index=asked,
                           guidance=scale)
        for name, judge in judges.items():
            curve["adherence"][name].append(_share_as_asked(judge, samples,
                                                            [labels.get(name) for labels in samples.conditions]))
        verdict = judge_samples(run.domain, samples, real, seed=seed, reference_pieces=pieces)
        curve["judge_accuracy"].append(verdict["accuracy"] if verdict.get("available") else float("nan"))
    return curve
