#!/usr/bin/env bash
# Conditional generation rows of BENCHMARKS.md (issue 13). Every row trains for the same STEP budget
# (--max-steps, not wall time: the CPU is shared), one thread each, small models.
#
#   bench/conditions_benchmark.sh music     # Bach chorales: mode-conditional seq-VAE and VRNN vs unconditional twins
#   bench/conditions_benchmark.sh strokes   # KanjiVG, 3 stroke-count classes: class-conditional VRNN, CAS, sheet
#   bench/conditions_benchmark.sh essen seqvae          # Essen folk tunes: (meter, key)-conditional seq-VAE + twin
#   bench/conditions_benchmark.sh essen vrnn            # ... VRNN + twin (each pair side by side, one thread each)
#   bench/conditions_benchmark.sh essen-measure seqvae  # ... adherence (key, meter judges) and test likelihoods
#
# Environment: WORK (default /tmp/conditions-bench), STEPS (default 800 music and essen / 1500 strokes), N (samples, 100).
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
SEQSTUDIO="${SEQSTUDIO:-seqstudio}"
PYTHON="${PYTHON:-python3}"
WORK="${WORK:-/tmp/conditions-bench}"
N="${N:-100}"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
COMMON=(--batch-size 32 --lr 1e-3 --seed 0 --quiet --set train.valid_every=250 --set train.patience=0
        --set train.samples=0 --set train.workers=1 --set train.threads=1)
case "${1:-music}" in
music)
  STEPS="${STEPS:-800}"
  DATA="$WORK/bach"
  [ -d "$DATA" ] || "$SEQSTUDIO" data build bach-chorales "$DATA" --workers 1 --quiet
  SEQVAE=(--backend seqvae --set backend.latent_size=32 --set backend.encoder_size=128 --set backend.decoder_size=128
          --set backend.decoder_layers=1 --set backend.kl_warmup_steps=500)
  VRNN=(--backend vrnn --set backend.hidden_size=128 --set backend.phi_size=64 --set backend.latent_size=16)
  for family in seqvae vrnn; do
    [ "$family" = seqvae ] && OPTS=("${SEQVAE[@]}") || OPTS=("${VRNN[@]}")
    "$SEQSTUDIO" train "$DATA" "${OPTS[@]}" "${COMMON[@]}" --max-steps "$STEPS" --set train.conditions=mode \
      --run-dir "$WORK/runs/$family-mode" &
    "$SEQSTUDIO" train "$DATA" "${OPTS[@]}" "${COMMON[@]}" --max-steps "$STEPS" --set train.conditions=none \
      --run-dir "$WORK/runs/$family-plain" &
  done
  wait
  for family in seqvae vrnn; do
    "$PYTHON" "$HERE/bench/conditions_measure.py" "$WORK/runs/$family-mode" "$WORK/runs/$family-plain" "$N" \
      | tee -a "$WORK/music.jsonl"
  done
  "$PYTHON" "$HERE/bench/conditions_figures.py" pianoroll "$WORK/runs/seqvae-mode" "$HERE/docs/conditions-major-minor.png"
  ;;
essen|essen-measure)
  STEPS="${STEPS:-800}"
  DATA="$WORK/essen"
  FAMILY="${2:-seqvae}"
  [ -d "$DATA" ] || "$SEQSTUDIO" data build essen-folk "$DATA" --workers 2 --quiet
  if [ "$FAMILY" = seqvae ]; then
    OPTS=(--backend seqvae --set backend.latent_size=32 --set backend.encoder_size=128 --set backend.decoder_size=128
          --set backend.decoder_layers=1 --set backend.kl_warmup_steps=500)
  else
    OPTS=(--backend vrnn --set backend.hidden_size=128 --set backend.phi_size=64 --set backend.latent_size=16)
  fi
  if [ "$1" = essen ]; then
    "$SEQSTUDIO" train "$DATA" "${OPTS[@]}" "${COMMON[@]}" --max-steps "$STEPS" --set train.conditions=meter,key \
      --run-dir "$WORK/runs/essen-$FAMILY-meter-key-$STEPS" &
    "$SEQSTUDIO" train "$DATA" "${OPTS[@]}" "${COMMON[@]}" --max-steps "$STEPS" --set train.conditions=none \
      --run-dir "$WORK/runs/essen-$FAMILY-plain-$STEPS" &
    wait
  else
    "$PYTHON" "$HERE/bench/conditions_measure.py" "$WORK/runs/essen-$FAMILY-meter-key-$STEPS" "$WORK/runs/essen-$FAMILY-plain-$STEPS" \
      "$N" | tee -a "$WORK/essen.jsonl"
  fi
  ;;
strokes)
  STEPS="${STEPS:-1500}"
  DATA="$WORK/kanji3"
  [ -d "$DATA" ] || "$PYTHON" "$HERE/bench/conditions_data.py" "$DATA" 90
  VRNN=(--backend vrnn --set backend.hidden_size=128 --set backend.phi_size=64 --set backend.latent_size=16
        --set backend.mixtures=10)
  "$SEQSTUDIO" train "$DATA" "${VRNN[@]}" "${COMMON[@]}" --max-steps "$STEPS" --run-dir "$WORK/runs/kanji-vrnn-label" &
  "$SEQSTUDIO" train "$DATA" "${VRNN[@]}" "${COMMON[@]}" --max-steps "$STEPS" --set train.conditions=none \
    --run-dir "$WORK/runs/kanji-vrnn-plain" &
  wait
  "$PYTHON" "$HERE/bench/conditions_measure.py" "$WORK/runs/kanji-vrnn-label" "$WORK/runs/kanji-vrnn-plain" "$N" \
    | tee -a "$WORK/strokes.jsonl"
  "$PYTHON" "$HERE/bench/conditions_figures.py" sheet "$WORK/runs/kanji-vrnn-label" "$HERE/docs/conditions-strokes-sheet.png" 8
  ;;
esac
