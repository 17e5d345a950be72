#!/usr/bin/env bash
# Reproduces the "Text: Essen folk tunes as ABC" rows of BENCHMARKS.md.
#
#   bench/text_benchmark.sh            # main rows (VRNN vs plain LSTM LM), then the extra rows (seq-VAE, LSTM-GAN)
#   bench/text_benchmark.sh main       # only VRNN vs LSTM
#   bench/text_benchmark.sh extra      # only seq-VAE and LSTM-GAN
#
# Each pair of rows trains side by side, one CPU thread each (OMP_NUM_THREADS=1), for the same wall-time budget,
# so both see the same machine conditions; every phase holds $LOCK (flock) so no other benchmark overlaps it.
# Then, per row: `seqstudio evaluate --split test --json` (nats per character; /ln 2 = bits per character) and
# bench/abc_validity.py on 100 generated tunes at temperature 1.0 and 0.8.
#
# Environment: WORK (runs, tunes, results; default /tmp/text-bench), DATA (the built essen-folk-abc folder;
# default $WORK/data, built when missing), MINUTES (main rows' training budget,
# default 12), EXTRA_MINUTES (extra rows, default 8), N (tunes per validity check, default 100), IW (importance
# samples for the VRNN's IWAE bound, default 10), LOCK (default /tmp/seqstudio-bench.lock), SEQSTUDIO, PYTHON.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
SEQSTUDIO="${SEQSTUDIO:-seqstudio}"
PYTHON="${PYTHON:-python3}"
WORK="${WORK:-/tmp/text-bench}"
MINUTES="${MINUTES:-12}"
EXTRA_MINUTES="${EXTRA_MINUTES:-8}"
N="${N:-100}"
IW="${IW:-10}"
LOCK="${LOCK:-/tmp/seqstudio-bench.lock}"
DATA="${DATA:-$WORK/data}"
RUNS="$WORK/runs"
COMMON=(--batch-size 64 --lr 2e-3 --seed 0 --set train.valid_every=100 --set train.patience=0
        --set train.samples=0 --set train.workers=1 -q)
mkdir -p "$RUNS"

[ -f "$DATA/seqstudio.yaml" ] || "$SEQSTUDIO" data build essen-folk-abc "$DATA" --quiet

train() {  # train NAME MINUTES [options...]: one thread, wall time written to runs/NAME.wall
  local name="$1" minutes="$2"; shift 2
  rm -rf "${RUNS:?}/$name"
  local t0=$SECONDS
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "$SEQSTUDIO" train "$DATA" --run-dir "$RUNS/$name" --max-minutes "$minutes" \
    "${COMMON[@]}" "$@"
  echo $((SECONDS - t0)) > "$RUNS/$name.wall"
}

pair() {  # pair NAME_A MINUTES "OPTIONS_A" NAME_B "OPTIONS_B": both at once, holding the lock
  local a="$1" minutes="$2" opts_a="$3" b="$4" opts_b="$5"
  (
    flock 9
    # shellcheck disable=SC2086
    train "$a" "$minutes" $opts_a & local pa=$!
    # shellcheck disable=SC2086
    train "$b" "$minutes" $opts_b & local pb=$!
    wait "$pa" && wait "$pb"
  ) 9>"$LOCK"
}

evaluate() {  # evaluate NAME [evaluate options...]: test-split figures and tune validity, holding the lock
  local name="$1"; shift
  (
    flock 9
    "$SEQSTUDIO" evaluate "$RUNS/$name" --split test --json "$@" > "$RUNS/$name/eval-test.json"
    for t in 1.0 0.8; do
      "$PYTHON" "$HERE/bench/abc_validity.py" "$RUNS/$name" -n "$N" --seed 0 --temperature "$t" \
        --out "$WORK/tunes/$name-t$t" > "$RUNS/$name/validity-t$t.json"
    done
  ) 9>"$LOCK"
  "$PYTHON" - "$name" "$RUNS" <<'PY' | tee -a "$WORK/results.jsonl"
import json, math, sys
import torch
name, runs = sys.argv[1:]
run = f"{runs}/{name}"
ev = json.load(open(f"{run}/eval-test.json"))
val = {t: json.load(open(f"{run}/validity-t{t}.json")) for t in ("1.0", "0.8")}
records = [json.loads(line) for line in open(f"{run}/metrics.jsonl")]
train = [r for r in records if r["split"] == "train"]
valid = [r for r in records if r["split"] == "valid" and "nll" in r]
ckpt = torch.load(f"{run}/last.pt", map_location="cpu", weights_only=True)
params = sum(v.numel() for v in ckpt["model"].values() if v.is_floating_point())
steps = ckpt["state"]["step"]
epochs = round(steps * train[-1]["epoch"] / train[-1]["step"], 2) if train else None
best = min(valid, key=lambda r: r["nll"] + r.get("kl", 0.0))["step"] if valid else None  # best.pt's step
bits = lambda nats: round(nats / math.log(2), 4) if nats is not None else None  # noqa: E731
row = {"row": name, "backend": ev["backend"], "params": params, "steps": steps, "epochs": epochs,
       "best_step": best, "wall_s": int(open(f"{runs}/{name}.wall").read()),
       "test_steps": ev.get("steps"),
       "test_nll_bits": bits(ev.get("nll")), "test_kl_bits": bits(ev.get("kl")),
       "test_bound_bits": bits(-ev["elbo"]) if "elbo" in ev else None,
       "test_iwae_bits": bits(-ev["iwae"]) if "iwae" in ev else None,
       "test_accuracy": round(ev["accuracy"], 4) if "accuracy" in ev else None,
       "mean_overlap": round(ev["mean_overlap"], 3) if "mean_overlap" in ev else None,
       "valid_t1.0": val["1.0"]["share_valid"], "finished_t1.0": val["1.0"]["finished"],
       "valid_t0.8": val["0.8"]["share_valid"], "finished_t0.8": val["0.8"]["finished"]}
print(json.dumps(row))
PY
}

PARTS=("$@")
[ ${#PARTS[@]} -gt 0 ] || PARTS=(main extra)
for part in "${PARTS[@]}"; do
  case "$part" in
    main)
      pair vrnn "$MINUTES" "--backend vrnn" lstm "--backend rnn"
      evaluate vrnn --iw-samples "$IW"
      evaluate lstm ;;
    extra)
      # The seq-VAE at its defaults (256-unit BiLSTM encoder, 2 x 256 decoder) managed 37 steps in 8 CPU minutes;
      # this row uses the demo's smaller size.
      pair seqvae "$EXTRA_MINUTES" "--backend seqvae --set backend.kl_warmup_steps=200 --set backend.encoder_size=128
        --set backend.decoder_size=128 --set backend.decoder_layers=1" lstmgan "--backend lstmgan"
      evaluate seqvae
      evaluate lstmgan --samples "$N" ;;
    *) echo "unknown part $part (valid: main, extra)" >&2; exit 2 ;;
  esac
done
echo "results: $WORK/results.jsonl"
