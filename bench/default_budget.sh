#!/usr/bin/env bash
# What a newcomer's first run reaches: `seqstudio train DATA` at the defaults (nothing set but the budget) for
# MINUTES of training (validation excluded) on ONE CPU thread, i.e. 5 CPU minutes by default, per domain.
# Rows run two at a time (one thread each) on a 2-core machine. Prints one JSON line per row: steps, epochs,
# best valid figures and the test figures of the best checkpoint (chosen on valid), plus --samples metric overlap.
#   usage: MINUTES=5 OUT=/tmp/default-budget bash bench/default_budget.sh
set -euo pipefail
cd "$(dirname "$0")/.."
S=$PWD/.venv/bin/seqstudio
MINUTES=${MINUTES:-5}
OUT=${OUT:-/tmp/default-budget}
export SEQSTUDIO_CACHE=${SEQSTUDIO_CACHE:-$OUT/cache}
mkdir -p "$OUT"
for recipe in bach-chorales kanjivg essen-folk-abc; do
  [ -d "$OUT/data/$recipe" ] || $S data build "$recipe" "$OUT/data/$recipe" >/dev/null 2>&1
done
ROWS=${ROWS:-midi-seqvae strokes-seqvae text-seqvae text-rnn}
declare -A DATA=([midi-seqvae]=bach-chorales [strokes-seqvae]=kanjivg [text-seqvae]=essen-folk-abc [text-rnn]=essen-folk-abc)
declare -A OPTS=([midi-seqvae]="" [strokes-seqvae]="" [text-seqvae]="-b seqvae" [text-rnn]="-b rnn")
row() {  # NAME: the domain's defaults, nothing set but the budget (and the backend where the row names one)
  local name=$1
  rm -rf "$OUT/runs/$name"
  $S train "$OUT/data/${DATA[$name]}" --run-dir "$OUT/runs/$name" --max-minutes "$MINUTES" --threads 1 --quiet \
    ${OPTS[$name]}
}
set -- $ROWS
while [ $# -gt 0 ]; do  # two rows side by side, one thread each
  row "$1" & a=$!
  if [ $# -gt 1 ]; then row "$2" & b=$!; wait $b; shift; fi
  wait $a; shift
done
for name in $ROWS; do
  run=$OUT/runs/$name
  test=$(OMP_NUM_THREADS=2 $S evaluate "$run" --split test --json --samples 32)
  python3 - "$name" "$run" "$test" <<'PY'
import json, sys
name, run, test = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
records = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if l.strip()]
valid = [r for r in records if r.get("split") == "valid"]
train = [r for r in records if r.get("split") == "train"]
best = max(valid, key=lambda r: r["elbo"])
keep = ("nll", "kl", "elbo", "accuracy", "mean_overlap")
print(json.dumps({"row": name, "steps": valid[-1]["step"], "epochs": round(train[-1].get("epoch", 0), 2) if train else None,
                  "tokens_per_s": train[-1].get("tokens_per_s") if train else None,
                  "best_valid": {k: round(best[k], 4) for k in keep if k in best}, "best_step": best["step"],
                  "test": {k: round(v, 4) for k, v in test.items() if k in keep}}))
PY
done
