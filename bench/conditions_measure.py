"""Measure conditional runs against their unconditional twins (BENCHMARKS.md, "Conditional generation").

    python bench/conditions_measure.py COND_RUN UNCOND_RUN [N_SAMPLES]

Prints one JSON object: the held-out test likelihood of both runs (the conditional one conditioned as trained),
and per judged attribute the share of samples found as asked: the conditional run asked for conditions drawn
from the training distribution (``asked``), the same model with every condition unknown (``dropped``), the
unconditional twin against the same asked values (``unconditional``: chance), and the judge on real held-out
windows (``held_out``: the ceiling). Coarser views of the same judgements: for ``key``, ``tonic`` holds the same
four shares counting only the tonic (the Essen tunes' key signatures state the tonic, not the mode); for
``meter``, ``family`` counts duple / triple / compound (``metre_family``).
"""

import json
import sys

import torch

from seqstudio import api
from seqstudio.training import use_threads


def tonic(key):
    """``G:minor`` -> ``G``: the essen-folk files' key signatures name the tonic, not the mode."""
    return str(key).split(":")[0] if key else None


def metre_family(meter):
    """``6/8`` -> ``compound``: duple (2, 4 beats), triple (3) or compound (6, 9, 12) metre, whatever the beat's
    value; what a listener tells most surely (2/4 against 4/4 is a matter of notation)."""
    if not meter:
        return None
    beats = int(str(meter).split("/")[0])
    return {2: "duple", 4: "duple", 3: "triple", 6: "compound", 9: "compound", 12: "compound"}.get(beats, "other")


def main(cond_dir, uncond_dir, n):
    use_threads(1)
    cond, uncond = api.load(cond_dir), api.load(uncond_dir)
    out = {"conditional_run": cond_dir, "unconditional_run": uncond_dir, "samples": n}
    for name, run in (("conditional", cond), ("unconditional", uncond)):
        if run.backend.has_likelihood:
            ev = api.evaluate(run, split="test", progress=False)
            out[f"{name}_test"] = {k: ev.get(k) for k in ("nll", "kl", "elbo", "steps", "windows")}
        out[f"{name}_step"] = int(run.checkpoint["state"]["step"])
    listened = api.evaluate_conditions(cond, split="test", n=n, seed=0, progress=False)
    cs = cond.fitted.conditions
    asked = cs.sample(n, torch.Generator().manual_seed(0))  # the same draw evaluate_conditions asked for
    judges = cond.domain.condition_judges(cs.names, lambda: api.labelled_windows(cond, None, "train", 2000, 0, False))
    plain = api.generate(uncond, n=n, seed=0)
    for attr, judge in judges.items():
        wanted = [cs.labels(row.tolist()).get(attr) for row in asked]
        pairs = [(s, t) for s, t in zip(plain, wanted) if t]
        listened[attr]["unconditional_twin"] = sum(judge(s) == t for s, t in pairs) / len(pairs)
        found = [judge(s) for s in plain]
        listened[attr]["twin_distribution"] = {v: found.count(v) / len(found) for v in sorted(set(map(str, found)))}
    coarse = {"key": ("tonic", tonic), "meter": ("family", metre_family)}
    coarse = {a: v for a, v in coarse.items() if a in judges}
    if coarse:  # coarser views of the same judgements (see the module docstring)
        with_c = api.generate(cond, n=n, seed=0, condition_index=asked)
        without = api.generate(cond, n=n, seed=0, condition_index=torch.zeros_like(asked))
        real = api.labelled_windows(cond, None, "test", 1000, 0, False)
        for attr, (name, view) in coarse.items():
            wanted = [cs.labels(row.tolist()).get(attr) for row in asked]

            def share(samples, targets):
                pairs = [(s, t) for s, t in zip(samples, targets) if t]
                return sum(view(judges[attr](s)) == view(t) for s, t in pairs) / len(pairs)

            listened[attr][name] = {"asked": share(with_c, wanted), "unconditional": share(without, wanted),
                                    "unconditional_twin": share(plain, wanted),
                                    "held_out": share([s for s, _ in real], [lab.get(attr) for _, lab in real])}
    out["conditions"] = listened
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 100)
