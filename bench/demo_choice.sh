#!/usr/bin/env bash
# Issue 25, parts 5-6: which MIDI representation x backend x head makes chorales (and folk tunes) a judge cannot
# tell from real ones, at equal CPU time. Each ROW trains on DATA for MINUTES of this process's CPU time
# (train.budget_clock=cpu, one thread: equal work however loaded the machine is), generates 64 samples, reports
# the test split's likelihood (`seqstudio evaluate RUN --split test`) and the sample judge's verdict against the
# test split's whole pieces (`bench/judge.py --files --data`: real chorales, no codec, so every codec is judged
# against the same music). One JSON line per row goes to $WORK/results.jsonl.
#
#   DATA=/tmp/bach MINUTES=5 WORK=/tmp/demo-choice bench/demo_choice.sh notes_rnn roll_nade_joint ...
#   SEED=1 ... (a second seed of the same rows)
#
# Rows (see BENCHMARKS.md, "Issue 25: the demo's representation"): the names below; each adds transposition by
# up to 3 semitones (codec.transpose=3) and validates every 100 steps.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SEQSTUDIO="${SEQSTUDIO:-$HERE/../.venv/bin/seqstudio}"
PYTHON="${PYTHON:-$HERE/../.venv/bin/python}"
DATA="${DATA:?DATA=folder built by seqstudio data build}"
WORK="${WORK:-/tmp/demo-choice}"
MINUTES="${MINUTES:-5}"
SEED="${SEED:-0}"
SAMPLES="${SAMPLES:-64}"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$WORK"
COMMON=(--set train.valid_every=100 --set codec.transpose=3 --set train.budget_clock=cpu --threads 1)
SEQVAE_DEMO=(--backend seqvae --lr 3e-3 --set backend.encoder_size=128 --set backend.decoder_size=128
             --set backend.kl_warmup_steps=300)
TF_SMALL=(--backend transformer --set backend.d_model=128 --set backend.layers=4 --set backend.heads=4
          --set train.lr_warmup_steps=100)
for row in "$@"; do
  case "$row" in
    demo_seqvae)        args=("${SEQVAE_DEMO[@]}" --codec pianoroll) ;;                                 # make demo before issue 25
    roll_rnn_nade)      args=(--backend rnn --codec pianoroll --set heads.binary=nade) ;;
    roll_rnn_nade_joint) args=(--backend rnn --codec pianoroll --set heads.binary=nade --set codec.joint_onsets=true) ;;
    roll_rnn_nade_q2)   args=(--backend rnn --codec pianoroll --set heads.binary=nade --set codec.steps_per_quarter=2) ;;
    roll_rnn_nade_held) args=(--backend rnn --codec pianoroll --set heads.binary=nade --set codec.onsets=false) ;;
    roll_rnn_nade_q2_held) args=(--backend rnn --codec pianoroll --set heads.binary=nade --set codec.steps_per_quarter=2 --set codec.onsets=false) ;;
    events_rnn)         args=(--backend rnn --codec events --set codec.window=256 --set codec.hop=128) ;;
    notes_rnn)          args=(--backend rnn --codec notes) ;;
    notes_rnn_b16)      args=(--backend rnn --codec notes --batch-size 16 --lr 2e-3) ;;
    notes_tf_b16)       args=("${TF_SMALL[@]}" --codec notes --batch-size 16 --lr 1e-3) ;;
    notes_seqvae)       args=("${SEQVAE_DEMO[@]}" --codec notes) ;;
    notes_vrnn_b16)     args=(--backend vrnn --codec notes --batch-size 16 --lr 2e-3) ;;
    *) echo "unknown row $row" >&2; exit 2 ;;
  esac
  run="$WORK/$row-s$SEED"
  rm -rf "$run" "$run-samples"
  "$SEQSTUDIO" train "$DATA" --run-dir "$run" --max-minutes "$MINUTES" --seed "$SEED" --quiet "${COMMON[@]}" "${args[@]}"
  "$SEQSTUDIO" generate "$run" -n "$SAMPLES" -o "$run-samples" --seed "$SEED" --quiet --no-pictures
  "$SEQSTUDIO" evaluate "$run" --split test --json > "$run-test.json"
  "$PYTHON" "$HERE/judge.py" --files "$run-samples" --data "$DATA" --split test --seed "$SEED" --json > "$run-judge.json"
  "$PYTHON" - "$row" "$SEED" "$run" <<'PY' | tee -a "$WORK/results.jsonl"
import json, sys
row, seed, run = sys.argv[1], int(sys.argv[2]), sys.argv[3]
test = json.load(open(f"{run}-test.json"))
judge = json.load(open(f"{run}-judge.json"))
steps = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
features = judge.get("features", {})
out = {"row": row, "seed": seed, "steps": max(r.get("step", 0) for r in steps),
       "test_nll": test.get("nll"), "judge": round(judge["accuracy"], 3), "spread": round(judge["accuracy_spread"], 3),
       "floor": round(judge["floor"]["accuracy"], 3)}
for name in ("short_notes", "texture_4", "dissonance", "notes_per_beat"):
    f = features.get(name, {})
    out[name] = [round(f.get("generated_mean", float("nan")), 3), round(f.get("reference_mean", float("nan")), 3)]
print(json.dumps(out))
PY
done
