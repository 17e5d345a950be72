"""The sample judge: can a small classifier tell generated excerpts from real ones?

A classifier two-sample test (Lopez-Paz & Oquab 2017, "Revisiting classifier two-sample tests"): the domain turns
every sample into equal-size excerpts and every excerpt into a dict of features (``Domain.judge_excerpts``,
``Domain.judge_features``: for music, 16-beat excerpts and their texture, note lengths, onset positions, key-free
pitch-class profile, voice motion and dissonance); a logistic regression on the standardised features
(``FeatureClassifier``) is trained on all but one of k folds to tell the two sets apart and scored on the fold
left out. Its held-out *balanced accuracy*, with its spread over the folds, is the verdict: 0.5 means the
classifier cannot tell the sets apart on these features, 1.0 that every excerpt gives itself away. Classes are
balanced (the larger set is subsampled) and every draw is seeded, so a verdict repeats exactly.

Beside it, per feature, MGEval's overlapping area of the two distributions (``seqstudio.metrics``, Yang & Lerch
2020), which says *where* the sets differ; and the same figures for two disjoint halves of the real excerpts
(the *floor*: what "indistinguishable" looks like at this sample size). ``calibrate`` checks the judge itself
on the domain's negative controls (``Domain.judge_controls``: real excerpts shuffled in time, random ones): a
judge worth trusting gives about 0.5 for real vs real and about 1.0 for those.

Nothing here knows the domain: a plugin domain gets a judge by giving features (by default its ``metrics``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .feature_classifier import FeatureClassifier
from .metrics import compare

DEFAULT_FOLDS = 5
FIT_STEPS = 300  # full-batch Adam steps of the logistic regression: converged on a few hundred excerpts


def no_judge(domain, reason: str | None = None) -> dict[str, Any]:
    """What ``judge`` gives for a domain that offers no features: said, not an error."""
    return {"available": False,
            "reason": reason or f"domain {domain.name!r} gives no judge features (Domain.judge_features, by "
                                f"default its metrics): no sample judge"}


def excerpts_and_features(domain, samples: list, groups: list | None = None
                          ) -> tuple[list, list[dict[str, float]], list]:
    """The domain's excerpts of ``samples``, each excerpt's features, and each excerpt's group: the group of the
    sample it was cut from (``groups``, one per sample: the piece a window came from), else the sample's index."""
    groups = list(range(len(samples))) if groups is None else list(groups)
    excerpts, excerpt_groups = [], []
    for sample, group in zip(samples, groups):
        cut = domain.judge_excerpts([sample])
        excerpts += cut
        excerpt_groups += [group] * len(cut)
    return excerpts, [dict(domain.judge_features(e)) for e in excerpts], excerpt_groups


def _group_ids(groups: list) -> list[int]:
    """Any hashable group labels (a ``(source, piece)`` pair) as small integers, in order of first appearance."""
    ids: dict = {}
    return [ids.setdefault(g, len(ids)) for g in groups]


def halves(groups: list, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of the indices of ``groups``, split by group (every excerpt of a piece on one side:
    excerpts of one piece share its key and texture, and a floor that split them would be too easy), the
    groups in seeded random order, the first half of the groups on one side."""
    keys = list(dict.fromkeys(groups))
    order = np.random.default_rng(seed + 1).permutation(len(keys))
    first = {keys[i] for i in order[: len(keys) // 2]}
    a = np.array([i for i, g in enumerate(groups) if g in first], dtype=np.int64)
    b = np.array([i for i, g in enumerate(groups) if g not in first], dtype=np.int64)
    return a, b


def _matrix(names: list[str], rows: list[dict[str, float]]) -> np.ndarray:
    return np.array([[float(r.get(n, math.nan)) for n in names] for r in rows], dtype=np.float64).reshape(
        len(rows), len(names))


def _impute(*matrices: np.ndarray) -> list[np.ndarray]:
    """A feature a sample leaves undefined (``nan``) takes the feature's median over all the sets, so it neither
    gives a set away nor drops the sample."""
    pooled = np.concatenate(matrices)
    with np.errstate(all="ignore"):
        fill = np.where(np.isfinite(pooled), pooled, np.nan)
        medians = np.nan_to_num(np.nanmedian(fill, axis=0) if pooled.size else np.zeros(pooled.shape[1]))
    out = []
    for m in matrices:
        m = m.copy()
        bad = ~np.isfinite(m)
        m[bad] = np.broadcast_to(medians, m.shape)[bad]
        out.append(m)
    return out


def _zero(net) -> None:
    """Start the logistic regression at zero: the fit is convex, so it ends where it ends whatever the global
    random state (the verdict must not depend on what ran before)."""
    net.weight.zero_()
    net.bias.zero_()


def _folds(groups: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """A fold per row, whole groups to a fold (the excerpts of one piece are never on both sides of a fit: the
    classifier would learn the piece, not the difference), groups in random order, each to the emptiest fold."""
    keys, sizes = np.unique(groups, return_counts=True)
    fill = np.zeros(k, dtype=np.int64)
    fold_of_key = {}
    for i in rng.permutation(len(keys)):
        fold = int(np.argmin(fill))
        fold_of_key[keys[i]] = fold
        fill[fold] += sizes[i]
    return np.array([fold_of_key[g] for g in groups], dtype=np.int64)


def two_sample_test(a: np.ndarray, b: np.ndarray, folds: int = DEFAULT_FOLDS, seed: int = 0,
                    per_side: int | None = None, groups_a=None, groups_b=None) -> dict[str, Any]:
    """Held-out balanced accuracy of a logistic regression telling the rows of ``a`` from those of ``b``.

    Both sets are cut to the same size (the smaller one's, or ``per_side`` if smaller still; a seeded random
    subset) and split into ``folds`` folds (fewer when a set has fewer rows), each side on its own, keeping
    the rows of one group (``groups_a``/``groups_b``: the piece of each row; default: every row its own) in one
    fold; the classifier is fitted on the other folds for each. Returns ``accuracy`` (mean over folds),
    ``spread`` (their standard deviation), ``fold_accuracies``, ``folds`` and ``per_side``; ``accuracy`` is
    ``nan`` with a ``reason`` when either set has fewer than 2 rows."""
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b), per_side if per_side else len(a) + len(b))
    if n < 2:
        return {"accuracy": math.nan, "spread": math.nan, "fold_accuracies": [], "folds": 0, "per_side": int(n),
                "reason": f"too few excerpts to judge ({len(a)} against {len(b)}; at least 2 each)"}
    groups_a = np.arange(len(a)) if groups_a is None else np.asarray(groups_a)
    groups_b = np.arange(len(b)) if groups_b is None else np.asarray(groups_b)
    pick_a, pick_b = rng.permutation(len(a))[:n], rng.permutation(len(b))[:n]
    a, b, groups_a, groups_b = a[pick_a], b[pick_b], groups_a[pick_a], groups_b[pick_b]
    k = min(folds, len(np.unique(groups_a)), len(np.unique(groups_b)))
    if k < 2:
        return {"accuracy": math.nan, "spread": math.nan, "fold_accuracies": [], "folds": 0, "per_side": int(n),
                "reason": "too few pieces to judge (each side needs excerpts of at least 2)"}
    fold_a, fold_b = _folds(groups_a, k, rng), _folds(groups_b, k, rng)
    scores = []
    for fold in range(k):
        train_a, train_b = a[fold_a != fold], b[fold_b != fold]
        model = FeatureClassifier(np.concatenate([train_a, train_b]).astype(np.float32),
                                  ["a"] * len(train_a) + ["b"] * len(train_b), steps=FIT_STEPS, init=_zero)
        hit_a = np.mean([p == "a" for p in model.predict(a[fold_a == fold].astype(np.float32))])
        hit_b = np.mean([p == "b" for p in model.predict(b[fold_b == fold].astype(np.float32))])
        scores.append(float((hit_a + hit_b) / 2))
    return {"accuracy": float(np.mean(scores)), "spread": float(np.std(scores)), "fold_accuracies": scores,
            "folds": k, "per_side": int(n)}


def judge_features(domain, generated: list[dict[str, float]], real: list[dict[str, float]],
                   folds: int = DEFAULT_FOLDS, seed: int = 0, real_groups: list | None = None) -> dict[str, Any]:
    """The judge on feature dicts already computed: generated vs real, and two halves of real (the floor).

    Returns ``available``, ``accuracy``, ``accuracy_spread``, ``folds``, ``per_side``, ``floor`` (the same test
    on two disjoint halves of ``real``, split by ``real_groups`` (one per excerpt: its piece) where given, at
    most as many per side as the main test), ``features`` (per feature:
    the overlap and both sets' mean and standard deviation, and ``floor_overlap``), ``mean_overlap``,
    ``floor_mean_overlap``, the counts, and the domain's ``unit`` and ``highlights``."""
    names = [n for n in (real[0] if real else {})] if real else []
    if not names:
        names = list(generated[0]) if generated and generated[0] else []
    if not names:
        return no_judge(domain)
    g, r = _impute(_matrix(names, generated), _matrix(names, real))
    groups = np.array(_group_ids(list(range(len(r))) if real_groups is None else list(real_groups)))
    test = two_sample_test(g, r, folds, seed, groups_b=groups)
    first, second = halves(list(groups), seed)
    floor = two_sample_test(r[first], r[second], folds, seed, per_side=test["per_side"] or None,
                            groups_a=groups[first], groups_b=groups[second])
    overlaps = compare(generated, real)
    floor_overlaps = (compare([real[i] for i in first], [real[i] for i in second]) if len(first) and len(second)
                      else {"metrics": {}, "mean_overlap": math.nan})
    features = {}
    for name in names:
        row = dict(overlaps["metrics"].get(name, {}))
        row["floor_overlap"] = floor_overlaps["metrics"].get(name, {}).get("overlap", math.nan)
        features[name] = row
    out = {"available": True, "unit": getattr(domain, "judge_unit", "samples"),
           "highlights": [h for h in getattr(domain, "judge_highlights", ()) if h in features],
           "accuracy": test["accuracy"], "accuracy_spread": test["spread"], "folds": test["folds"],
           "per_side": test["per_side"], "fold_accuracies": test["fold_accuracies"],
           "generated_excerpts": len(generated), "real_excerpts": len(real),
           "floor": {"accuracy": floor["accuracy"], "accuracy_spread": floor["spread"], "folds": floor["folds"],
                     "per_side": floor["per_side"]},
           "mean_overlap": overlaps["mean_overlap"], "floor_mean_overlap": floor_overlaps["mean_overlap"],
           "features": features}
    if "reason" in test:
        out["reason"] = test["reason"]
    return out


def judge(domain, generated_samples: list, real_samples: list, folds: int = DEFAULT_FOLDS,
          seed: int = 0, real_groups: list | None = None) -> dict[str, Any]:
    """Judge ``generated_samples`` against ``real_samples`` (both the domain's samples; held-out real ones):
    see ``judge_features`` for what it returns. ``real_groups``: the piece of each real sample (default: each
    its own), so the floor's halves never share a piece. A domain without features gets ``no_judge``'s answer."""
    _, real, groups = excerpts_and_features(domain, real_samples, real_groups)
    if not real or not real[0]:
        return no_judge(domain)
    _, generated, _ = excerpts_and_features(domain, generated_samples)
    return judge_features(domain, generated, real, folds, seed, groups)


def calibrate(domain, real_samples: list, folds: int = DEFAULT_FOLDS, seed: int = 0,
              real_groups: list | None = None) -> dict[str, Any]:
    """The judge on known answers: the real excerpts of half the pieces against those of the other half (should
    be about 0.5), and against each of the domain's negative controls made from the other half
    (``Domain.judge_controls``: shuffled in time, random; each should be about 1.0). ``real_groups``: the piece
    of each sample (default: each sample its own). Returns ``{"real vs real": verdict, "real vs <control>":
    verdict, ...}``, each verdict as ``judge_features`` gives it (its own floor from the first half)."""
    excerpts, features, groups = excerpts_and_features(domain, real_samples, real_groups)
    if not features or not features[0]:
        return {"real vs real": no_judge(domain)}
    a, b = halves(groups, seed + 1)
    first = [features[i] for i in a]
    first_groups = [groups[i] for i in a]
    second = [excerpts[i] for i in b]
    out = {"real vs real": judge_features(domain, [features[i] for i in b], first, folds, seed, first_groups)}
    for name, control in domain.judge_controls(second, seed).items():
        out[f"real vs {name}"] = judge_features(domain, [dict(domain.judge_features(e)) for e in control],
                                                first, folds, seed, first_groups)
    return out


__all__ = ["judge", "judge_features", "calibrate", "two_sample_test", "excerpts_and_features", "no_judge", "halves",
           "DEFAULT_FOLDS"]
