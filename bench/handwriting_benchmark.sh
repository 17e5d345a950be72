#!/bin/bash
# issue 14 benchmark: text-conditioned vs unconditional, rnn vs vrnn, same size and step budget
cd "$(dirname "$0")/.."  # the repository
BENCH=${BENCH:-/tmp/h14bench}
# data: .venv/bin/seqstudio data build bench/hershey-short.yaml $BENCH/data --workers 1  (1500 lines, 6-14 characters)
# then: .venv/bin/python bench/handwriting_content.py $BENCH/data $BENCH/runs/rnn-auto $BENCH/runs/vrnn-auto $BENCH/runs/rnn-none
export SEQSTUDIO_CACHE=${SEQSTUDIO_CACHE:-/tmp/seqstudio-cache} OMP_NUM_THREADS=1
STEPS=${STEPS:-500}
COMMON="--max-steps $STEPS --set train.workers=1 --set train.threads=1 --set backend.hidden_size=64 --set backend.phi_size=64 --set backend.mixtures=10 --set codec.window=300 --set train.batch_size=32 --set train.valid_every=100 --set train.patience=0 --set train.samples=0"
for b in rnn vrnn; do
  for t in auto none; do
    run=$BENCH/runs/$b-$t
    rm -rf $run
    echo "== $b text=$t $(date -u +%T)"
    .venv/bin/seqstudio train $BENCH/data --backend $b --run-dir $run $COMMON --set train.text=$t 2>&1 | tr '\r' '\n' | grep -v "step/s\]$\|file/s\]$" | grep -v "^ *$" | tail -6
    .venv/bin/seqstudio evaluate $run --split test --json 2>&1 | tail -1 > $run.eval.json
    cat $run.eval.json
  done
done
echo "== done $(date -u +%T)"
