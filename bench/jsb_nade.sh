#!/usr/bin/env bash
# The six rows of issue 12 on jsb-bl2012 (BENCHMARKS.md, "Chords that hold together"): rnn | rnn + NADE |
# VRNN | VRNN + NADE | VRNN smoothing | VRNN smoothing + NADE, every row at the same training budget, PARALLEL
# rows side by side (one torch thread each), then a table of the results.
#
#   bench/jsb_nade.sh                                   # CPU: 10 minutes a row, two at a time (as in BENCHMARKS.md)
#   MINUTES=15 SET=tr bench/jsb_nade.sh                 # the regularised six (transposition 6, dropout 0.3)
#   MINUTES=60 SET=tr PARALLEL=6 DEVICE=cuda bench/jsb_nade.sh  # the full-size version, on a GPU when one is lent
#   MINUTES=60 SET=sweep PARALLEL=6 DEVICE=cuda bench/jsb_nade.sh  # what the hour rows call for (BENCHMARKS.md)
#
# Environment: as bench/jsb_benchmark.sh (JSB_JSON, WORK, MINUTES, THREADS, IW, DEVICE), plus PARALLEL and SET
# (plain: the rows without regularisation, the default; tr: the *_tr rows; sweep: weight decay, a wider NADE,
# Resq and second seeds on the two best rows).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SEQSTUDIO="${SEQSTUDIO:-seqstudio}"
JSB_JSON="${JSB_JSON:-$HERE/../../shared/datasets/jsb-chorales-quarter.json}"
WORK="${WORK:-/tmp/jsb-bench}"
PARALLEL="${PARALLEL:-2}"
export SEQSTUDIO JSB_JSON WORK
ROWS=(rnn_f rnn_nade vrnn_f vrnn_nade vrnn_sm vrnn_sm_nade)
case "${SET:-plain}" in
  plain) ;;
  tr) ROWS=("${ROWS[@]/%/_tr}") ;;
  sweep) ROWS=(rnn_nade_wd rnn_nade_h300 rnn_nade_tr_s1 vrnn_sm_nade_wd vrnn_sm_nade_resq vrnn_sm_nade_tr_s1) ;;
  *) echo "SET must be plain, tr or sweep, got ${SET}" >&2; exit 2 ;;
esac
[ -d "$WORK/data/train" ] || "$SEQSTUDIO" data build jsb-bl2012 "$WORK/data" --source "$JSB_JSON" --quiet
mkdir -p "$WORK/logs"
for ((i = 0; i < ${#ROWS[@]}; i += PARALLEL)); do  # PARALLEL rows at a time, each pair over before the next
  for r in "${ROWS[@]:i:PARALLEL}"; do
    "$HERE/jsb_benchmark.sh" "$r" > "$WORK/logs/$r.log" 2>&1 &
  done
  wait
done
python3 - "$WORK" "${IW:-100}" "${ROWS[@]}" <<'PY'
import json, sys
work, iw, rows = sys.argv[1], sys.argv[2], sys.argv[3:]
found = {}
for line in open(f"{work}/results.jsonl"):
    r = json.loads(line)
    found[r["row"]] = r  # the latest result of each row
print(f"| row | steps | valid ELBO | test ELBO | test IWAE K={iw} | test KL | frame acc. |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name in rows:
    r = found.get(name)
    if r:
        print(f"| {name} | {r['steps']} | {r['valid_elbo']} | {r['test_elbo']} | {r['test_iwae']} | {r['test_kl']} "
              f"| {r['test_accuracy']} |")
    else:
        print(f"| {name} | (failed: see {work}/logs/{name}.log) |")
PY
