#!/usr/bin/env bash
# Reproduces the "VRNN-GMM vs RNN-GMM on KanjiVG" rows of BENCHMARKS.md: the VRNN and the same network with
# its latent removed (the paper's RNN baseline), trained side by side on CPU for the same wall time (one
# thread each, so neither waits for the other), then scored on the held-out test characters: negative
# log-likelihood per stroke point (offsets under the Gaussian mixture + pen state), ELBO and IWAE bound.
# Finally the VRNN draws 16 characters: the sheet in docs/strokes-sheet.png.
#
#   bench/strokes_benchmark.sh
#
# Environment: WORK (data + runs; default /tmp/strokes-bench), MINUTES (training budget, default 12),
# IW (IWAE samples, default 20), LIMIT (characters from the recipe, default all 6,413).
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
SEQSTUDIO="${SEQSTUDIO:-seqstudio}"
WORK="${WORK:-/tmp/strokes-bench}"
MINUTES="${MINUTES:-12}"
IW="${IW:-20}"
LIMIT="${LIMIT:-0}"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
DATA="$WORK/data"
COMMON=(--max-minutes "$MINUTES" --batch-size 32 --lr 1e-3 --seed 0 --quiet
        --set train.valid_every=100 --set train.patience=0 --set train.samples=0 --set train.workers=1
        --set backend.hidden_size=256 --set backend.phi_size=128)
LATENT=(--set backend.latent_size=32 --set backend.kl_warmup_steps=1000)  # the VRNN's own options

[ -d "$DATA" ] || "$SEQSTUDIO" data build kanjivg "$DATA" --limit "$LIMIT" --quiet

rm -rf "$WORK/runs"
t0=$SECONDS
"$SEQSTUDIO" train "$DATA" --backend vrnn "${COMMON[@]}" "${LATENT[@]}" --run-dir "$WORK/runs/vrnn-gmm" &
"$SEQSTUDIO" train "$DATA" --backend rnn "${COMMON[@]}" --run-dir "$WORK/runs/rnn-gmm" &
wait
echo "trained both in $((SECONDS - t0)) s (side by side)"
for row in vrnn-gmm rnn-gmm; do
  run="$WORK/runs/$row"
  "$SEQSTUDIO" evaluate "$run" --split test --iw-samples "$IW" --json > "$run/eval-test.json"
  python3 - "$row" "$run" <<'PY' | tee -a "$WORK/results.jsonl"
import json, sys
row, run = sys.argv[1:]
t = json.load(open(f"{run}/eval-test.json"))
steps = [json.loads(line) for line in open(f"{run}/metrics.jsonl")]
last_step = max(m.get("step", 0) for m in steps)
print(json.dumps({"row": row, "test_nll_per_point": t["nll"], "test_kl_per_point": t["kl"],
                  "test_elbo": t["elbo"], "test_iwae": t.get("iwae"), "pen_state_accuracy": t.get("accuracy"),
                  "test_characters": t["windows"], "test_points": t["steps"], "train_steps": last_step}))
PY
done
"$SEQSTUDIO" generate "$WORK/runs/vrnn-gmm" -n 16 -o "$WORK/samples" --seed 0 --temperature 0.6 --bias 0.5
mkdir -p "$HERE/docs"
cp "$WORK/samples/sample-sheet.png" "$HERE/docs/strokes-sheet.png"
echo "sheet: docs/strokes-sheet.png"
