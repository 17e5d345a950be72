#!/usr/bin/env bash
# Start-up of commands that should not import torch, this checkout (A) against another (B), in alternating pairs
# (issue 32; BENCHMARKS.md "Fast to start, fast per real token"). Whole-process wall and CPU seconds from
# GNU time, N runs each (default 5), after one warm-up each. Runs from / so the working folder shadows nothing.
#   OLD=/tmp/base RUN=runs/x bash bench/startup.sh          # OLD: a git worktree of the commit to compare with
set -u
HERE="$(cd "$(dirname "$0")/.." && pwd)"
PY=${PY:-$HERE/.venv/bin/python}
OLD=${OLD:?a git worktree of the old code}
RUN=${RUN:?a run directory both versions can read}
N=${N:-5}
export OMP_NUM_THREADS=1
path() { local r="$1"; echo "$r:$r/plugins/midi:$r/plugins/text:$r/plugins/strokes"; }
t() { (cd / && PYTHONPATH="$1" /usr/bin/time -f "%e %U %S" "$PY" "${@:2}" > /dev/null 2> /tmp/startup.$$ ); tail -1 /tmp/startup.$$; }
echo "floor (import torch): $(t "" -c 'import torch')"
for args in "--help" "plugins" "data list" "cache info" "info $RUN" "generate $RUN -n 8 -q --seed 0 -o /tmp/startup-gen"; do
  t "$(path "$HERE")" -m seqstudio $args > /dev/null; t "$(path "$OLD")" -m seqstudio $args > /dev/null  # warm-up
  for i in $(seq "$N"); do
    echo "A $args: $(t "$(path "$HERE")" -m seqstudio $args)  (wall user sys)"
    echo "B $args: $(t "$(path "$OLD")" -m seqstudio $args)"
  done
done
rm -f /tmp/startup.$$
