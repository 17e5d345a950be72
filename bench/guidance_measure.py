"""Adherence against the classifier-free guidance scale (BENCHMARKS.md, "Classifier-free guidance", issue 33).

    python bench/guidance_measure.py COND_RUN [TWIN_RUN] [N_SAMPLES]

Prints one JSON object: ``api.evaluate_guidance`` on the conditional run (per judged attribute the share of N
samples found as asked at guidance 0, 1, 2, 4, the judge's agreement with the real held-out values, the
ceiling, and the sample judge's accuracy at each scale), and, given an unconditional twin, the share of the
twin's N samples that land in the same asked values (chance for this data and budget).
"""

import json
import sys

import torch

from seqstudio import api
from seqstudio.training import use_threads


def main(cond_dir, twin_dir, n):
    use_threads(1)
    cond = api.load(cond_dir)
    out = {"conditional_run": cond_dir, "step": int(cond.checkpoint["state"]["step"]), "samples": n}
    out["guidance"] = api.evaluate_guidance(cond, split="test", n=n, seed=0, progress=False)
    if twin_dir:
        twin = api.load(twin_dir)
        cs = cond.fitted.conditions
        asked = cs.sample(n, torch.Generator().manual_seed(0))  # the draw evaluate_guidance asked for
        judges = api.condition_judges(cond, None, seed=0, progress=False)
        plain = api.generate(twin, n=n, seed=0)
        real, pieces = api.judge_reference(twin, None, "test", seed=0, progress=False)
        verdict = api.judge_samples(twin.domain, plain, real, seed=0, reference_pieces=pieces)
        out["twin"] = {"run": twin_dir, "step": int(twin.checkpoint["state"]["step"]),
                       "judge_accuracy": verdict.get("accuracy")}
        for attr, judge in judges.items():
            wanted = [cs.labels(row.tolist()).get(attr) for row in asked]
            pairs = [(s, t) for s, t in zip(plain, wanted) if t]
            out["twin"][attr] = sum(judge(s) == t for s, t in pairs) / len(pairs)
    print(json.dumps(out))


if __name__ == "__main__":
    args = sys.argv[1:]
    n = int(args.pop()) if args and args[-1].isdigit() else 100
    main(args[0], args[1] if len(args) > 1 else None, n)
