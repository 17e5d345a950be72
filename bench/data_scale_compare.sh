#!/bin/bash
# Issue 17: encoding throughput and warm start-up, this checkout against an older one, alternating, in one run.
#   OLD=/path/to/worktree-of-old-commit SCALE=/tmp/scale CACHE=/tmp/scale-cache bash bench/data_scale_compare.sh encode|startup
# encode: ROUNDS (default "new old new old new"), CODEC (default pianoroll), then symusic's parse-only floor.
# SCALE holds c1000 c10000 c50000 (python bench/data_scale.py corpus SCALE --base BACH --sizes 1000 10000 50000).
# Each command runs from / with PYTHONPATH naming the code, so the checkout in the working folder cannot shadow it.
set -e
HERE="$(cd "$(dirname "$0")/.." && pwd)"
PY=${PY:-$HERE/.venv/bin/python}
OLD=${OLD:?a git worktree of the old code}
SCALE=${SCALE:?the corpus folder}
CACHE=${CACHE:-/tmp/data-scale-cache}
export OMP_NUM_THREADS=1
code() { if [ "$1" = old ]; then echo "$OLD:$OLD/plugins/midi"; else echo "$HERE:$HERE/plugins/midi"; fi; }
case "$1" in
  encode)  # files/s of the 10,000-file corpus, 2 workers, no cache; the files read once before (page cache)
    cat "$SCALE"/c10000/*/*.mid > /dev/null
    for v in ${ROUNDS:-new old new old new}; do
      (cd / && PYTHONPATH=$(code $v) $PY "$HERE/bench/data_scale.py" encode "$SCALE/c10000" --workers 2 \
         --codec ${CODEC:-pianoroll} | sed "s/^/$v /")
    done
    # symusic's floor: the same files only parsed, in two worker processes already started
    (cd / && $PY "$HERE/bench/data_scale.py" floor "$SCALE/c10000" --workers 2 | sed "s/^/floor /") ;;
  startup)  # CPU seconds to prepare the train split from a warm cache (one cache per size, shared by both)
    for n in ${SIZES:-1000 10000 50000}; do
      for v in old new new-ordinary; do  # the first run of each warms (or builds) the cache and is not kept
        for i in 0 1 2; do
          line=$(cd / && SEQSTUDIO_NO_PREPARED=$([ $v = new-ordinary ] && echo 1) PYTHONPATH=$(code ${v%-ordinary}) \
                 $PY "$HERE/bench/data_scale.py" loader "$SCALE/c$n" --cache "$CACHE/c$n" --batches 20)
          [ $i -gt 0 ] && echo "$v $line"
        done
      done
    done ;;
  *) echo "usage: $0 encode|startup" >&2; exit 2 ;;
esac
