#!/usr/bin/env bash
# Real steps (time steps of real, unpadded data) per second of training with batches grouped by length
# (train.length_grouping=auto, the default for whole pieces) against random batches (=off), on JSB Chorales
# whole pieces, in A/B pairs run one after the other; then the two runs' likelihoods at the same step count.
#
#   bench/length_grouping.sh                  # rnn and vrnn, batch 16 and 64, EPOCHS epochs each
#
# Every arm trains exactly EPOCHS epochs (every window once per epoch in both arms), so both process the same
# real steps; real steps/s = EPOCHS x (real steps of the training split) / the run's training seconds
# (metrics.jsonl's elapsed_s at the last validation: data loading and validation excluded).
# Environment: JSB_JSON, WORK (default /tmp/length-grouping), EPOCHS (default 10), BACKENDS ("rnn vrnn"),
# BATCHES ("16 64"), THREADS (default 1).
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
SEQSTUDIO="${SEQSTUDIO:-seqstudio}"
JSB_JSON="${JSB_JSON:-$HERE/../shared/datasets/jsb-chorales-quarter.json}"
WORK="${WORK:-/tmp/length-grouping}"
EPOCHS="${EPOCHS:-10}"
export OMP_NUM_THREADS="${THREADS:-1}" MKL_NUM_THREADS="${THREADS:-1}"
DATA="$WORK/data"
CODEC=(--set codec.steps_per_quarter=1 --set codec.onsets=false --set codec.window=0 --set codec.window_bars=0)
COMMON=(--lr 1e-3 --seed 0 --set train.conditions=none --set train.patience=0 --set train.samples=0
        --set train.workers=1 --set train.valid_every=1000000 --set train.init_output_bias=false)
[ -d "$DATA/train" ] || "$SEQSTUDIO" data build jsb-bl2012 "$DATA" --source "$JSB_JSON" --quiet

for backend in ${BACKENDS:-rnn vrnn}; do
  for batch in ${BATCHES:-16 64}; do
    steps=$(( EPOCHS * ((229 + batch - 1) / batch) ))   # 229 training pieces
    for grouping in off auto; do
      run="$WORK/runs/$backend-b$batch-$grouping"
      rm -rf "$run" && mkdir -p "$WORK/runs"
      "$SEQSTUDIO" train "$DATA" --backend "$backend" "${COMMON[@]}" "${CODEC[@]}" --batch-size "$batch" \
        --max-steps "$steps" --set train.length_grouping="$grouping" --run-dir "$run" 2> "$run.log" > /dev/null
      "$SEQSTUDIO" evaluate "$run" --split test --json --checkpoint last > "$run/eval-test.json"
      python3 - "$run" "$backend" "$batch" "$grouping" "$EPOCHS" "$JSB_JSON" <<'PY' | tee -a "$WORK/results.jsonl"
import json, sys
run, backend, batch, grouping, epochs, jsb = sys.argv[1:]
real = sum(len(p) for p in json.load(open(jsb))["train"])
rows = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
elapsed = max(r["elapsed_s"] for r in rows if r["split"] == "valid")
steps = max(r["step"] for r in rows)
test = json.load(open(f"{run}/eval-test.json"))
print(json.dumps({"backend": backend, "batch": int(batch), "grouping": grouping, "steps": steps,
                  "train_s": elapsed, "real_steps_per_s": round(int(epochs) * real / elapsed, 1),
                  "test_elbo": round(test["elbo"], 4)}))
PY
    done
  done
done
