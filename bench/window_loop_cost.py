"""Cost of one training step of a text-conditioned run with the fused window loop (``window_loop.py``) against
the plain autograd loop it replaced (``TextWindowLayer.fused = False``), in the same process on the same batch.

    OMP_NUM_THREADS=1 python bench/window_loop_cost.py RUN DATA [NO_TEXT_RUN] [--steps 10] [--rounds 3]

RUN: a text-conditioned run (its backend, weights and codec are used); DATA: its data folder (a batch of
``--batch`` training lines, seed 0, is encoded with the run's codec); NO_TEXT_RUN (optional): the same backend
trained without text, timed on the same strokes for scale. One training step = zero_grad, loss, backward and an
Adam step, as in the trainer. The variants alternate in ``--rounds`` rounds of ``--steps`` steps (after one
warm-up step each), so a change in the machine's load hits them alike; the median step time per variant and
the ratios are printed as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import torch

from seqstudio import api
from seqstudio_strokes.domain import StrokesDomain


def batch_for(run, inks, with_text: bool):
    xs = [run.codec.encode(ink) for ink in inks]
    xs = [torch.as_tensor(x) for x in xs]
    T = max(x.shape[0] for x in xs)
    x = torch.zeros(len(xs), T, xs[0].shape[1], dtype=xs[0].dtype)
    for i, v in enumerate(xs):
        x[i, : v.shape[0]] = v
    lengths = torch.tensor([v.shape[0] for v in xs])
    batch = {"x": x, "mask": torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1), "lengths": lengths}
    if with_text:
        text = run.backend.text_spec.tensor([ink.label for ink in inks])
        batch["text"], batch["text_mask"] = text, text > 0
    return batch


def step_times(backend, batch, n):
    opt = torch.optim.Adam(backend.parameters(), lr=1e-3)
    backend.train()
    times = []
    for _ in range(n + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss, _ = backend.loss(batch)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return times[1:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("data")
    ap.add_argument("no_text_run", nargs="?")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(1)
    files = sorted(Path(args.data, "train").glob("*.svg"))
    random.Random(0).shuffle(files)
    domain = StrokesDomain()
    inks = [domain.read(p) for p in files[: args.batch]]
    text_run = api.load(args.run)
    variants = {"fused": (text_run, True), "plain": (text_run, False)}
    if args.no_text_run:
        variants["no_text"] = (api.load(args.no_text_run), None)
    batches = {k: batch_for(r, inks, fused is not None) for k, (r, fused) in variants.items()}
    times = {k: [] for k in variants}
    state = {k: {n: p.detach().clone() for n, p in r.backend.state_dict().items()} for k, (r, _) in variants.items()}
    for _ in range(args.rounds):
        for k, (r, fused) in variants.items():
            r.backend.load_state_dict(state[k])  # every round starts from the same weights
            if fused is not None:
                r.backend.text_layer.fused = fused
            times[k] += step_times(r.backend, batches[k], args.steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"threads": torch.get_num_threads(), "batch": args.batch, "points": int(batches["fused"]["mask"].sum()),
           "max_len": int(batches["fused"]["x"].shape[1]), "steps_per_variant": len(times["fused"]),
           **{f"s_per_step_{k}": round(v, 4) for k, v in med.items()},
           "plain_over_fused": round(med["plain"] / med["fused"], 2)}
    if "no_text" in med:
        out["fused_over_no_text"] = round(med["fused"] / med["no_text"], 2)
        out["plain_over_no_text"] = round(med["plain"] / med["no_text"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
