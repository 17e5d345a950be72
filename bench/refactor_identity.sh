#!/usr/bin/env bash
# Bit-for-bit check of a refactor: the same short trainings and generations at a fixed seed on two checkouts of
# seqstudio (A = before, B = after), compared file by file. Each side runs its own code (PYTHONPATH = its tree and
# its plugins, the same .venv) with its own, empty encoding cache, so neither reuses the other's preparation.
#
#   bench/refactor_identity.sh TREE_A TREE_B [STEPS]      (STEPS: training steps per row, default 40)
#
# Rows (the data is built once, by TREE_A, into $WORK/data-*):
#   jsb_rnn   the JSB rnn_z row's options (bench/jsb_benchmark.sh), --max-steps STEPS
#   jsb_vrnn  the JSB vrnn_z row's options, --max-steps STEPS
#   jsb_cond  the JSB rnn row with the conditions left on (train.conditions=auto: key and mode fitted)
#   seqvae    the seq-VAE demo's options on bach-chorales (BENCHMARKS.md, first section), --max-steps STEPS
#   demo      `make demo`'s options (DEMO_SETTINGS in the Makefile), --max-steps STEPS
# Each row: train, then `generate -n 4 --seed 0`; compared: metrics.jsonl without its clock fields (tokens_per_s,
# eta_s, elapsed_s), codec.json, spec.json, data.json, the end-of-training samples and the generated files.
set -euo pipefail
A="$(cd "$1" && pwd)" B="$(cd "$2" && pwd)" STEPS="${3:-40}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$HERE/.venv/bin/python}"
WORK="${WORK:-/tmp/refactor-identity}"
JSB_JSON="${JSB_JSON:-$HERE/../shared/datasets/jsb-chorales-quarter.json}"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$WORK"

side() {  # side TREE ARGS...: seqstudio of that tree
  local tree="$1"; shift
  PYTHONPATH="$tree:$tree/plugins/midi:$tree/plugins/strokes:$tree/plugins/text" "$PY" -m seqstudio "$@"
}
[ -d "$WORK/data-jsb/train" ] || side "$A" data build jsb-bl2012 "$WORK/data-jsb" --source "$JSB_JSON" --quiet
[ -f "$WORK/data-bach/seqstudio.yaml" ] || side "$A" data build bach-chorales "$WORK/data-bach" --quiet

JSB_CODEC=(--set codec.steps_per_quarter=1 --set codec.onsets=false --set codec.window=0 --set codec.window_bars=0)
JSB_COMMON=(--batch-size 16 --lr 1e-3 --seed 0 --set train.valid_every=10 --set train.patience=0
            --set train.samples=2 --set train.workers=1 "${JSB_CODEC[@]}")
row_args() {
  case "$1" in
    jsb_rnn)  echo "$WORK/data-jsb --backend rnn ${JSB_COMMON[*]} --set train.conditions=none --set train.init_output_bias=false" ;;
    jsb_vrnn) echo "$WORK/data-jsb --backend vrnn ${JSB_COMMON[*]} --set train.conditions=none --set backend.kl_warmup_steps=500 --set train.init_output_bias=false" ;;
    jsb_cond) echo "$WORK/data-jsb --backend rnn ${JSB_COMMON[*]}" ;;
    seqvae)   echo "$WORK/data-bach --backend seqvae --seed 0 --lr 3e-3 --set codec.transpose=3 --set train.valid_every=10 --set train.samples=2 --set train.workers=1" ;;
    demo)     echo "$WORK/data-bach --backend rnn --codec notes --batch-size 16 --lr 2e-3 --seed 0 --set codec.transpose=3 --set train.valid_every=10 --set train.samples=2 --set train.workers=1" ;;
  esac
}
ROWS=(jsb_rnn jsb_vrnn jsb_cond seqvae demo)
status=0
for row in "${ROWS[@]}"; do
  for s in A B; do
    tree=$A; [ $s = B ] && tree=$B
    out="$WORK/$s/$row"; rm -rf "$out"; mkdir -p "$out"
    # shellcheck disable=SC2046
    SEQSTUDIO_CACHE="$WORK/cache-$s" side "$tree" train $(row_args "$row") --max-steps "$STEPS" --run-dir "$out/run" -q
    SEQSTUDIO_CACHE="$WORK/cache-$s" side "$tree" generate "$out/run" -n 4 --seed 0 -o "$out/gen" --no-pictures -q
  done
  "$PY" - "$WORK/A/$row" "$WORK/B/$row" "$row" <<'PY' || status=1
import json, sys
from pathlib import Path
a, b, row = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
CLOCK = {"tokens_per_s", "eta_s", "elapsed_s"}
def metrics(run):
    return [{k: v for k, v in json.loads(l).items() if k not in CLOCK} for l in (run / "metrics.jsonl").read_text().splitlines()]
differ = []
if metrics(a / "run") != metrics(b / "run"):
    differ.append("metrics.jsonl")
for name in ("codec.json", "spec.json", "data.json"):
    if (a / "run" / name).read_bytes() != (b / "run" / name).read_bytes():
        differ.append(name)
files = sorted(p.relative_to(a) for p in a.glob("run/samples/*") if p.is_file()) + \
        sorted(p.relative_to(a) for p in a.glob("gen/*") if p.is_file())
for rel in files:
    if not (b / rel).is_file() or (a / rel).read_bytes() != (b / rel).read_bytes():
        differ.append(str(rel))
losses = [r.get("loss", r.get("elbo", r.get("nll"))) for r in metrics(a / "run")]
print(json.dumps({"row": row, "identical": not differ, "differ": differ, "metrics_records": len(losses),
                  "files_compared": len(files), "last_record": metrics(a / "run")[-1]}))
sys.exit(1 if differ else 0)
PY
done
exit $status
