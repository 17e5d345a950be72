"""The shipped models (plugins/models): measure one for its card, or train them all again and compare (`make models`).

    # the figures a card shows, for run RUN trained on data folder DATA, as the model ships (half precision):
    # `evaluate --split test` (likelihood), `evaluate --samples N` (metrics, the judge; CER for handwriting),
    # the quick check the fast test repeats, and the float32 run's likelihood beside the shipped one's
    python bench/models.py figures NAME RUN DATA [--samples 100] [--out figures.json]

    # make models: for every shipped model (or those named), run its card's commands in WORK (an empty folder:
    # the commands build the data into WORK/data and train into WORK/runs/NAME), then evaluate the new run on
    # the test split and compare with the card (exit 1 when a likelihood is worse than the card's by more than
    # --tolerance nats per step); --update exports the new run over the shipped folder, keeping its card
    python bench/models.py retrain [NAME ...] --work WORK [--tolerance 0.05] [--update]

Every command runs the real CLI (`seqstudio` next to this Python) with one thread (OMP_NUM_THREADS=1).
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

BIN = Path(sys.executable).parent
KEEP = ("nll", "accuracy", "kl", "elbo", "files", "windows", "steps", "split")


def seqstudio(*args, cwd=None, json_out=False):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [str(BIN / "seqstudio"), *map(str, args)]
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=cwd, env=env, check=True, text=True, capture_output=json_out)
    return json.loads(done.stdout.strip().splitlines()[-1]) if json_out else None


def _judge_summary(result: dict) -> dict:
    """The headline figures of `evaluate --samples N`: the judge's accuracy (0.5 = indistinguishable from real)
    with its spread and the real-vs-real floor, the metrics' mean overlap, and for handwriting the CER."""
    judge = result.get("judge") or {}
    out = {"samples": result.get("samples"), "temperature": result.get("temperature"),
           "mean_overlap": result.get("mean_overlap"), "judge_accuracy": judge.get("accuracy"),
           "judge_accuracy_spread": judge.get("accuracy_spread"),
           "judge_floor": (judge.get("floor") or {}).get("accuracy")}
    text = result.get("text") or {}
    if text and "skipped" not in text:
        out["cer"] = {"real_lines": text.get("real_cer"),
                      **{key: {"cer": text[key]["cer"], "cer_other_text": text[key]["cer_other_text"]}
                         for key in text if key.startswith("bias_")},
                      "style_primed_bias_2": (text.get("style_primed") or {}).get("cer")}
    return out


def figures(args) -> None:
    from seqstudio import model_cards, models

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / args.name
        seqstudio("export", args.run, folder, "--dtype", "float16")
        f32 = seqstudio("evaluate", args.run, args.data, "--split", "test", "--json", "-q", json_out=True)
        test = seqstudio("evaluate", folder, args.data, "--split", "test", "--json", "-q", json_out=True)
        judged = (seqstudio("evaluate", folder, args.data, "--split", "test", "--samples", args.samples, "--json",
                            "-q", json_out=True) if args.samples else {})
        check = {"recipe": args.recipe or args.name, "limit": 20, "split": "test"}
        quick = model_cards.quick_check(models.resolve(folder), check, Path(args.quick))
    import torch

    best = torch.load(Path(args.run) / "best.pt", weights_only=True).get("state", {})
    state = torch.load(Path(args.run) / "last.pt", weights_only=True).get("state", {})
    out = {"test": {k: test[k] for k in KEEP if k in test}, "float32_test_nll": f32["nll"],
           "judge": _judge_summary(judged) if judged else {},
           "quick_check": {**check, "nll": quick["nll"]},
           "training": {"steps": state.get("step"), "minutes": round(state.get("elapsed", 0) / 60, 2),
                        "stopped_because": state.get("stopped_because"), "best_step": best.get("step")}}
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


def retrain(args) -> int:
    from seqstudio import model_cards, models

    shipped = {n: m for n, m in models.installed().items() if m.provider == "seqstudio-models"}
    names = args.names or sorted(shipped)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    worse = []
    rows = []
    for name in names:
        card = shipped[name].path / "MODEL.md"
        for command in model_cards.commands(card):
            assert command.startswith("seqstudio "), f"{card}: {command!r} is not a seqstudio command"
            subprocess.run([str(BIN / "seqstudio"), *command.split()[1:]], cwd=work, check=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
        promised = model_cards.figures(card)
        data = work / "data" / promised["quick_check"]["recipe"]
        now = seqstudio("evaluate", work / "runs" / name, data, "--split", "test", "--json", "-q", json_out=True)
        before = promised["test"]["nll"]
        rows.append((name, before, now["nll"]))
        if now["nll"] > before + args.tolerance:
            worse.append(name)
        if args.update:
            target = shipped[name].path
            keep = card.read_bytes()
            staged = Path(tempfile.mkdtemp()) / name
            seqstudio("export", work / "runs" / name, staged, "--dtype", "float16")
            (staged / "MODEL.md").write_bytes(keep)  # figures: measure again (`figures`) and edit the card
            shutil.rmtree(target)
            shutil.copytree(staged, target)
    print(f"{'model':<16} {'card nll':>10} {'retrained':>10}")
    for name, before, now in rows:
        print(f"{name:<16} {before:>10.4f} {now:>10.4f}" + ("   WORSE" if name in worse else ""))
    return 1 if worse else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("figures")
    f.add_argument("name")
    f.add_argument("run")
    f.add_argument("data")
    f.add_argument("--recipe", help="The data recipe (default: NAME).")
    f.add_argument("--samples", type=int, default=100)
    f.add_argument("--quick", default="quick", help="Folder for the quick check's small builds.")
    f.add_argument("--out")
    r = sub.add_parser("retrain")
    r.add_argument("names", nargs="*")
    r.add_argument("--work", required=True)
    r.add_argument("--tolerance", type=float, default=0.05)
    r.add_argument("--update", action="store_true")
    args = parser.parse_args()
    if args.command == "figures":
        figures(args)
        return 0
    return retrain(args)


if __name__ == "__main__":
    sys.exit(main())
