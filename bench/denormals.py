"""What flushing denormals (``seqstudio.training.flush_denormals``) buys a run whose weights hold some: the run
is copied twice and each copy resumed for the same steps, one with flushing and one without, one after another,
one torch thread each; the trainer's own tokens/s (its train log rows) are compared.

    python bench/denormals.py RUN DATA [--steps 300]

RUN should be one that weight decay has trained for a while (BENCHMARKS.md, "Denormals": the JSB row
``rnn_nade_wd``); the script first counts the denormal values in its ``last.pt`` (weights and Adam state).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

NO_FLUSH = ("import sys, seqstudio.training as t; t.flush_denormals = lambda: False; "
            "from seqstudio.cli import main; main(sys.argv[1:])")


def denormals(obj) -> tuple[int, int]:
    """(denormal values, float values) in a checkpoint's nested tensors."""
    if torch.is_tensor(obj):
        if not obj.is_floating_point():
            return 0, 0
        small = (obj != 0) & (obj.abs() < torch.finfo(obj.dtype).tiny)
        return int(small.sum()), obj.numel()
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        counts = [denormals(o) for o in obj]
        return sum(c[0] for c in counts), sum(c[1] for c in counts)
    return 0, 0


def resume(run: Path, data: str, steps: int, flush: bool) -> dict:
    last = max(json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines())
    argv = ["train", data, "--run-dir", str(run), "--resume", "--max-steps", str(last + steps),
            "--max-minutes", "100000", "-q"]  # the saved run's time budget is spent already
    cmd = [sys.executable, "-m", "seqstudio", *argv] if flush else [sys.executable, "-c", NO_FLUSH, *argv]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [r["tokens_per_s"] for r in rows if r.get("split") == "train" and r["step"] > last and "tokens_per_s" in r]
    return {"flush": flush, "steps": steps, "log_rows": len(rates), "tokens_per_s": round(sum(rates) / len(rates), 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("data")
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    found, total = denormals(torch.load(args.run / "last.pt", map_location="cpu", weights_only=False))
    print(json.dumps({"checkpoint": str(args.run / "last.pt"), "denormal_values": found, "float_values": total}))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for flush in (False, True):
            copy = Path(tmp) / f"flush-{flush}"
            shutil.copytree(args.run, copy)
            results[flush] = resume(copy, args.data, args.steps, flush)
            print(json.dumps(results[flush]), flush=True)
    print(json.dumps({"speed-up with flushing": round(results[True]["tokens_per_s"] / results[False]["tokens_per_s"], 2)}))


if __name__ == "__main__":
    main()
