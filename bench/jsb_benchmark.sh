#!/usr/bin/env bash
# Reproduces the "VRNN on JSB Chorales" rows of BENCHMARKS.md: train each row on CPU for a fixed wall-time
# budget (checkpoint chosen on the valid split), then evaluate on the test split with the IWAE bound.
#
#   bench/jsb_benchmark.sh              # every row, one after another (BENCHMARKS.md: rnn at MINUTES=10,
#                                       # vrnn vrnn_i vrnn_t at MINUTES=8, vrnn_12 sets its own 12)
#   bench/jsb_benchmark.sh rnn vrnn     # only these rows
#
# Environment: JSB_JSON (the czhuang JSON; default ../shared/datasets/), WORK (data + runs; default
# /tmp/jsb-bench), MINUTES (training budget per row, default 10), THREADS (torch threads, default 1: the
# machine these figures came from had 2 cores shared with other jobs), IW (IWAE samples, default 100).
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
SEQSTUDIO="${SEQSTUDIO:-seqstudio}"
JSB_JSON="${JSB_JSON:-$HERE/../shared/datasets/jsb-chorales-quarter.json}"
WORK="${WORK:-/tmp/jsb-bench}"
MINUTES="${MINUTES:-10}"
IW="${IW:-100}"
export OMP_NUM_THREADS="${THREADS:-1}" MKL_NUM_THREADS="${THREADS:-1}"
DATA="$WORK/data"
CODEC=(--set codec.steps_per_quarter=1 --set codec.onsets=false --set codec.window=0 --set codec.window_bars=0)
COMMON=(--backend vrnn --max-minutes "$MINUTES" --batch-size 16 --lr 1e-3 --seed 0
        --set train.valid_every=30 --set train.patience=0 --set train.samples=0 --set train.workers=1)

[ -d "$DATA/train" ] || "$SEQSTUDIO" data build jsb-bl2012 "$DATA" --source "$JSB_JSON" --quiet

row() {  # row NAME [extra train options...]
  local name="$1"; shift
  local run="$WORK/runs/$name"
  rm -rf "$run"
  local t0=$SECONDS
  "$SEQSTUDIO" train "$DATA" "${COMMON[@]}" "${CODEC[@]}" --run-dir "$run" -q "$@"
  local t1=$SECONDS
  "$SEQSTUDIO" evaluate "$run" --split valid --json > "$run/eval-valid.json"
  "$SEQSTUDIO" evaluate "$run" --split test --iw-samples "$IW" --json > "$run/eval-test.json"
  local t2=$SECONDS
  python3 - "$name" "$run" "$((t1 - t0))" "$((t2 - t1))" "$*" <<'PY' | tee -a "$WORK/results.jsonl"
import json, sys
name, run, train_s, eval_s, args = sys.argv[1:]
v = json.load(open(f"{run}/eval-valid.json")); t = json.load(open(f"{run}/eval-test.json"))
best = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
steps = max(r["step"] for r in best)
print(json.dumps({"row": name, "args": args, "train_wall_s": int(train_s), "eval_wall_s": int(eval_s),
                  "steps": steps, "valid_elbo": round(v["elbo"], 3), "test_elbo": round(t["elbo"], 3),
                  "test_iwae": round(t.get("iwae", float("nan")), 3), "test_kl": round(t["kl"], 3),
                  "test_accuracy": round(t["accuracy"], 4)}))
PY
}

ROWS=("$@")
[ ${#ROWS[@]} -gt 0 ] || ROWS=(rnn vrnn vrnn_i vrnn_t vrnn_12)
for r in "${ROWS[@]}"; do
  case "$r" in
    rnn)     row rnn     --set backend.latent=false ;;
    vrnn)    row vrnn    --set backend.kl_warmup_steps=500 ;;
    vrnn_i)  row vrnn_i  --set backend.prior=independent --set backend.kl_warmup_steps=500 ;;
    vrnn_t)  row vrnn_t  --set backend.kl_warmup_steps=500 --set codec.transpose=6 ;;
    vrnn_12) row vrnn_12 --set backend.kl_warmup_steps=500 --max-minutes 12 ;;  # the vrnn row, longer
    vrnn_d)  row vrnn_d  --set backend.kl_warmup_steps=500 --set backend.dropout=0.3 ;;  # against overfitting
    rnn_d)   row rnn_d   --set backend.latent=false --set backend.dropout=0.3 ;;
    *) echo "unknown row $r" >&2; exit 2 ;;
  esac
done
