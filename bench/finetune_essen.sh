#!/bin/bash
# Issue 28: does fine-tuning a shipped model beat training from scratch on a small folder, at equal CPU time?
#   bench/finetune_essen.sh ESSEN WORK [MINUTES]
# ESSEN: a build of the essen-folk recipe (`seqstudio data build essen-folk ESSEN`, any --limit); WORK: an empty
# folder. WORK/ft20 gets 20 tunes of ESSEN's train split as train/, 20 of its valid split as valid/ and its whole
# test split as test/ (the split training uses: a hash of each file's content). Then, MINUTES CPU minutes each
# (default 2, one thread): bach-chorales fine-tuned on them (`train --from bach-chorales`, its codec and options)
# and the same model trained from scratch with the same options; both evaluated on test/.
set -euo pipefail
ESSEN=$1 WORK=$2 MINUTES=${3:-2}
BIN=$(dirname "$(readlink -f "$0")")/../.venv/bin
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$WORK"
"$BIN/python" - "$ESSEN" "$WORK/ft20" <<'PY'
import shutil, sys
from pathlib import Path
from seqstudio import data, registry
src, dest = Path(sys.argv[1]), Path(sys.argv[2])
files = data.split_files(src, registry.load_domain("midi")(), 0.1, 0.1)
for split, n in (("train", 20), ("valid", 20), ("test", None)):
    chosen = sorted(files[split])[:n]
    (dest / split).mkdir(parents=True, exist_ok=True)
    for f in chosen:
        shutil.copy(f, dest / split / f.name)
    print(split, len(chosen))
PY
COMMON=(--max-minutes "$MINUTES" --set train.budget_clock=cpu --threads 1 --seed 0 --set train.valid_every=20
        --set train.samples=0 -q)
"$BIN/seqstudio" train "$WORK/ft20" --from bach-chorales --run-dir "$WORK/from-bach" "${COMMON[@]}"
"$BIN/seqstudio" train "$WORK/ft20" --run-dir "$WORK/scratch" --backend rnn --codec notes --batch-size 16 --lr 2e-3 \
    --set codec.transpose=3 "${COMMON[@]}"
for run in from-bach scratch; do
    echo "$run $("$BIN/seqstudio" evaluate "$WORK/$run" --split test --json -q)"
done
