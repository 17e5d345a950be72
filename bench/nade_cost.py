"""Cost of the NADE head, of the smoothing posterior and of Resq, as ratios measured in one run.

    python bench/nade_cost.py                      # batch 16, 64 steps, 88 keys, 1 thread, package model sizes
    python bench/nade_cost.py --batch 64 --json
    python bench/nade_cost.py --rows vrnn-smoothing-resq+factorized,vrnn-resq+factorized   # (+ their baselines)

Every configuration trains on the same random 88-key piano-roll batch (``--voices`` keys on in every frame, at
random pitches: 4, as in the four-part JSB Chorales) in the same process with the same thread count; the configurations are timed round-robin (one step
of each in turn, repeated), so a change in the machine's load hits all of them alike. A training step is the
backend's own ``training_step`` (forward, backward, Adam). Sampling is ``Backend.sample`` of ``--batch``
sequences of ``--sample-steps`` steps (the NADE draws its keys one after another). Ratios are against the
factorized-head row of the same backend (``rnn`` for the ``rnn`` rows, filtering ``vrnn`` for the others),
except the Resq rows (``backend.posterior_residual=true``), which are against the same posterior without it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from seqstudio import heads
from seqstudio.backends.base import SamplingOptions, StepContext
from seqstudio.backends.rnn import RNN
from seqstudio.backends.vrnn import VRNN
from seqstudio.spec import Binary, FeatureSpec

ROWS = [  # name, backend class, backend options, head options, baseline row
    ("rnn+factorized", RNN, {}, {}, "rnn+factorized"),
    ("rnn+nade", RNN, {}, {"binary": "nade"}, "rnn+factorized"),
    ("vrnn+factorized", VRNN, {}, {}, "vrnn+factorized"),
    ("vrnn+nade", VRNN, {}, {"binary": "nade"}, "vrnn+factorized"),
    ("vrnn-smoothing+factorized", VRNN, {"posterior": "smoothing"}, {}, "vrnn+factorized"),
    ("vrnn-smoothing+nade", VRNN, {"posterior": "smoothing"}, {"binary": "nade"}, "vrnn+factorized"),
    ("vrnn-resq+factorized", VRNN, {"posterior_residual": True}, {}, "vrnn+factorized"),
    ("vrnn-smoothing-resq+factorized", VRNN, {"posterior": "smoothing", "posterior_residual": True}, {},
     "vrnn-smoothing+factorized"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=64, help="time steps per sequence")
    ap.add_argument("--keys", type=int, default=88)
    ap.add_argument("--voices", type=int, default=4, help="keys on in every frame")
    ap.add_argument("--nade-hidden", type=int, default=heads.HeadsConfig().nade_hidden)
    ap.add_argument("--repeats", type=int, default=15, help="timed training steps per configuration")
    ap.add_argument("--sample-steps", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rows", default="", help="comma-separated row names (default: all); their baselines run too")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows_run = ROWS
    if args.rows:
        asked = set(args.rows.split(","))
        unknown = asked - {r[0] for r in ROWS}
        if unknown:
            ap.error(f"unknown rows {sorted(unknown)}; rows: {', '.join(r[0] for r in ROWS)}")
        wanted = set(asked)
        while True:  # the baselines, and theirs
            more = wanted | {r[4] for r in ROWS if r[0] in wanted}
            if more == wanted:
                break
            wanted = more
        rows_run = [r for r in ROWS if r[0] in wanted]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    spec = FeatureSpec([Binary(args.keys)])
    on = torch.rand(args.batch, args.steps, args.keys).argsort(-1)[..., : args.voices]
    x = torch.zeros(args.batch, args.steps, args.keys).scatter_(-1, on, 1.0)
    batch = {"x": x, "mask": torch.ones(args.batch, args.steps, dtype=torch.bool),
             "lengths": torch.full((args.batch,), args.steps)}
    models = {}
    for name, cls, backend_opts, head_opts, _ in rows_run:
        with heads.head_options(heads.HeadsConfig(nade_hidden=args.nade_hidden, **head_opts)):
            model = cls(spec, cls.Config(**backend_opts))
        models[name] = (model, model.configure_optimizers(1e-3))

    def train_step(name, step):
        model, optimizers = models[name]
        model.training_step(batch, optimizers, StepContext(forward=model, clip_grad_norm=1.0, step=step))

    for name in models:  # warm-up
        train_step(name, 0)
    times = {name: [] for name in models}
    for rep in range(args.repeats):
        for name in models:
            t0 = time.perf_counter()
            train_step(name, rep + 1)
            times[name].append(time.perf_counter() - t0)
    sample_s = {}
    options = SamplingOptions(length=args.sample_steps)
    for name, (model, _) in models.items():
        t0 = time.perf_counter()
        model.sample(args.batch, options, torch.Generator().manual_seed(0))
        sample_s[name] = time.perf_counter() - t0
    rows = []
    for name, _, _, _, base in rows_run:
        train = statistics.median(times[name])
        rows.append({"row": name, "train_step_ms": round(1000 * train, 1),
                     "train_ratio": round(train / statistics.median(times[base]), 2),
                     "sample_ms": round(1000 * sample_s[name], 1),
                     "sample_ratio": round(sample_s[name] / sample_s[base], 2),
                     "parameters": sum(p.numel() for p in models[name][0].parameters())})
    info = {"batch": args.batch, "steps": args.steps, "keys": args.keys, "voices": args.voices,
            "nade_hidden": args.nade_hidden,
            "threads": args.threads, "repeats": args.repeats, "sample_steps": args.sample_steps,
            "torch": torch.__version__, "machine": platform.processor() or platform.machine()}
    if args.json:
        print(json.dumps({"info": info, "rows": rows}))
        return
    print(" ".join(f"{k}={v}" for k, v in info.items()))
    print(f"{'row':32s} {'train ms':>9s} {'x base':>7s} {'sample ms':>10s} {'x base':>7s} {'params':>9s}")
    for r in rows:
        print(f"{r['row']:32s} {r['train_step_ms']:9.1f} {r['train_ratio']:7.2f} {r['sample_ms']:10.1f} "
              f"{r['sample_ratio']:7.2f} {r['parameters']:9d}")


if __name__ == "__main__":
    main()
