#!/usr/bin/env bash
# Issue 25's JSB rows (BENCHMARKS.md, "Transformer + NADE on JSB"): transformer + NADE next to rnn + NADE with the
# same regularisation (transposition 6, dropout 0.3) at the same wall-time budget, one after another with one
# thread each; then the cosine schedule on the row that is best on valid, decaying over the steps that row took.
#
#   MINUTES=7 WORK=/tmp/jsb-tf bench/jsb_transformer.sh     # what BENCHMARKS.md ran, under the heavy-job lock
#
# Environment: as bench/jsb_benchmark.sh (JSB_JSON, WORK, MINUTES, THREADS, IW, DEVICE, SEQSTUDIO).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="${WORK:-/tmp/jsb-bench}"
export WORK
"$HERE/jsb_benchmark.sh" rnn_nade_tr tf_nade_tr
read -r BEST STEPS < <(python3 - "$WORK/results.jsonl" <<'PY'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows[r["row"]] = r  # the latest result of each row
best = max(("rnn_nade_tr", "tf_nade_tr"), key=lambda name: rows[name]["valid_elbo"])
print(best, rows[best]["steps"])
PY
)
echo "best on valid: $BEST ($STEPS steps); its cosine twin decays over $STEPS steps"
SCHEDULE_STEPS="$STEPS" "$HERE/jsb_benchmark.sh" "${BEST}_cos"
