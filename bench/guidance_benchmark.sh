#!/usr/bin/env bash
# Classifier-free guidance (issue 33): a class-conditional VRNN on three KanjiVG stroke-count classes, trained
# for a CPU-time budget, its adherence at --guidance 0, 1, 2, 4 beside the sample judge, and an unconditional
# twin at the same budget (chance). BENCHMARKS.md, "Classifier-free guidance".
#
#   bench/guidance_benchmark.sh            (run under: flock /tmp/seqstudio-heavy.lock bench/guidance_benchmark.sh)
#
# Environment: WORK (default /tmp/guidance-bench), MINUTES (CPU minutes per run, default 10), TWIN_MINUTES
# (default MINUTES; 0 = no twin), PER_CLASS (characters per class, default 150), N (samples per scale, 100).
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${WORK:-/tmp/guidance-bench}"
SEQSTUDIO="${SEQSTUDIO:-seqstudio}"
PYTHON="${PYTHON:-python3}"
MINUTES="${MINUTES:-10}"
TWIN_MINUTES="${TWIN_MINUTES:-$MINUTES}"
PER_CLASS="${PER_CLASS:-150}"
N="${N:-100}"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
DATA="$WORK/kanji3-$PER_CLASS"
[ -d "$DATA" ] || "$PYTHON" "$HERE/bench/conditions_data.py" "$DATA" "$PER_CLASS"
RUN=(--backend vrnn --set backend.hidden_size=128 --set backend.phi_size=64 --set backend.latent_size=16
     --set backend.mixtures=10 --batch-size 32 --lr 1e-3 --seed 0 --quiet --set train.valid_every=250
     --set train.patience=0 --set train.samples=0 --set train.workers=1 --set train.threads=1
     --set train.budget_clock=cpu)
uptime
# side by side, one thread each: the budget is CPU time (train.budget_clock=cpu), so sharing the cores with
# each other (and with other work) does not change what each run gets
"$SEQSTUDIO" train "$DATA" "${RUN[@]}" --max-minutes "$MINUTES" --run-dir "$WORK/runs/cond-$MINUTES" &
TWIN=""
if [ "$TWIN_MINUTES" != "0" ]; then
  "$SEQSTUDIO" train "$DATA" "${RUN[@]}" --max-minutes "$TWIN_MINUTES" --set train.conditions=none \
    --run-dir "$WORK/runs/twin-$TWIN_MINUTES" &
  TWIN="$WORK/runs/twin-$TWIN_MINUTES"
fi
wait
uptime
"$PYTHON" "$HERE/bench/guidance_measure.py" "$WORK/runs/cond-$MINUTES" $TWIN "$N" | tee -a "$WORK/guidance.jsonl"
uptime
