#!/bin/bash
# Issue 28: from a fresh clone, `make install` then the first `generate bach-chorales -n 8 --audio`, timed with
# start-up (a cold seqstudio cache: the model folder is checked and made into a run directory first), then the
# same command again (warm), then `write "hello world"`.
#   bench/models_startup.sh REPO WORK [TORCH_SPEC]
set -euo pipefail
REPO=$1 WORK=$2 TORCH_SPEC=${3:-torch==2.13.0}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 SEQSTUDIO_CACHE=$WORK/cache
rm -rf "$WORK" && mkdir -p "$WORK"
git clone -q "$REPO" "$WORK/clone" && cd "$WORK/clone"
/usr/bin/time -f "make install: %e s wall" make install TORCH_SPEC="$TORCH_SPEC" > "$WORK/install.log" 2>&1 || { tail "$WORK/install.log"; exit 1; }
tail -1 "$WORK/install.log"
uptime
/usr/bin/time -f "generate bach-chorales -n 8 --audio (cold cache): %e s wall, %U s user" \
    .venv/bin/seqstudio generate bach-chorales -n 8 --audio -o "$WORK/out" --seed 0
/usr/bin/time -f "generate bach-chorales -n 8 --audio (warm): %e s wall, %U s user" \
    .venv/bin/seqstudio generate bach-chorales -n 8 --audio -o "$WORK/out2" --seed 0
/usr/bin/time -f "write hello world: %e s wall, %U s user" \
    .venv/bin/seqstudio write "hello world" -o "$WORK/hello.svg"
ls "$WORK/out" | head -30
uptime
