#!/usr/bin/env bash
# The seq-VAE demo (Makefile DEMO_SETTINGS) with the factorized head against the NADE head (heads.binary=nade),
# at equal training time, the two side by side with one torch thread each; then for each: test ELBO and frame
# accuracy, the mean metric overlap of 100 samples against the test split (`evaluate --samples`), and 8 samples
# with their piano-roll pictures.
#
#   bash bench/demo_nade.sh          # DEMO_MINUTES=4 (the demo's budget), WORK=/tmp/demo-nade
set -euo pipefail
cd "$(dirname "$0")/.."
SEQSTUDIO="${SEQSTUDIO:-.venv/bin/seqstudio}"
WORK="${WORK:-/tmp/demo-nade}"
MINUTES="${DEMO_MINUTES:-4}"
export OMP_NUM_THREADS="${THREADS:-1}" MKL_NUM_THREADS="${THREADS:-1}"
SETTINGS=$(make -s --no-print-directory -f - print <<'MK'
include Makefile
print: ; @echo $(DEMO_SETTINGS)
MK
)
[ -d "$WORK/data" ] || "$SEQSTUDIO" data build bach-chorales "$WORK/data" --quiet
one() {  # one NAME [extra options]
  local name="$1"; shift
  rm -rf "$WORK/$name"
  # shellcheck disable=SC2086
  "$SEQSTUDIO" train "$WORK/data" --backend seqvae --run-dir "$WORK/$name/run" --max-minutes "$MINUTES" --seed 0 \
    $SETTINGS --set train.workers=1 -q "$@"
  "$SEQSTUDIO" evaluate "$WORK/$name/run" --split test --json > "$WORK/$name/eval-test.json"
  "$SEQSTUDIO" evaluate "$WORK/$name/run" --split test --samples 100 --json > "$WORK/$name/eval-samples.json"
  "$SEQSTUDIO" generate "$WORK/$name/run" -n 8 -o "$WORK/$name/samples" --seed 0 > /dev/null
}
one factorized &
one nade --set heads.binary=nade &
wait
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
print("| head | steps | test ELBO | test frame acc. | mean overlap (100 samples vs test) |")
print("|---|---:|---:|---:|---:|")
for name in ("factorized", "nade"):
    t = json.load(open(f"{work}/{name}/eval-test.json"))
    s = json.load(open(f"{work}/{name}/eval-samples.json"))
    steps = max(json.loads(l)["step"] for l in open(f"{work}/{name}/run/metrics.jsonl") if '"step"' in l)
    print(f"| {name} | {steps} | {t['elbo']:.3f} | {t['accuracy']:.3f} | {s.get('mean_overlap', float('nan')):.3f} |")
PY
