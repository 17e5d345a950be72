"""Where each benchmark row's validation curve was going when its budget ran out (from its metrics.jsonl).

    python bench/jsb_curves.py /tmp/jsb-bench/runs/rnn_f /tmp/jsb-bench/runs/rnn_nade ...

Per run: training steps, the best valid ELBO and its step (what best.pt holds), the last valid ELBO, and the
change of the valid ELBO over the last quarter of the steps (a running mean of 5 validations at each end, so one
noisy validation does not decide it): positive = still improving, negative = overfitting.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def curve(run: Path) -> dict:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    valid = [(r["step"], r["elbo"]) for r in rows if r.get("split") == "valid" and "elbo" in r]
    if not valid:
        return {"run": run.name, "validations": 0}
    best_step, best = max(valid, key=lambda sv: sv[1])
    last_step = valid[-1][0]
    quarter = [v for s, v in valid if s >= 0.75 * last_step]
    start_of_quarter = [v for s, v in valid if s <= 0.75 * last_step][-5:]

    def mean(xs):
        return sum(xs) / len(xs)

    trend = mean(quarter[-5:]) - mean(start_of_quarter) if start_of_quarter and quarter else float("nan")
    return {"run": run.name, "steps": last_step, "validations": len(valid), "best_valid_elbo": round(best, 3),
            "best_step": best_step, "last_valid_elbo": round(valid[-1][1], 3),
            "last_quarter_change": round(trend, 3)}


def main():
    for arg in sys.argv[1:]:
        print(json.dumps(curve(Path(arg))))


if __name__ == "__main__":
    main()
