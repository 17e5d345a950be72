#!/usr/bin/env bash
# The seq-VAE demo as a benchmark: wall time of a fresh `make demo` (install excluded when .venv exists) and the
# held-out figures of the trained model on the Bach chorales' test and valid splits.
#   usage: bash bench/demo_seqvae.sh            (TORCH_SPEC=torch==2.13.0 on machines with the local CPU wheel)
set -euo pipefail
cd "$(dirname "$0")/.."
make install TORCH_SPEC="${TORCH_SPEC:-torch}" >/dev/null
rm -rf demo
start=$(date +%s)
make demo TORCH_SPEC="${TORCH_SPEC:-torch}"
end=$(date +%s)
echo "make demo wall time (install excluded): $((end - start)) s"
for split in valid test; do
  .venv/bin/seqstudio evaluate demo/run --split "$split" --json
done
