"""Tamper with copies of a run directory and check that every command that reads one ends cleanly.

Each case copies RUN, applies one seeded random tampering to one of its files, then runs one of ``info``,
``generate``, ``report`` and ``plot`` on it in a subprocess (data-memory cap, wall-clock limit). Outcomes:

* ok: exit 0 (the tampering did not matter, e.g. a flipped byte inside a weight);
* clean error: exit 1 with one ``Error:`` line and no traceback;
* traceback, hang (no answer within ``--hang-seconds``), memory (peak RSS over ``--mem-limit-mb`` or killed);
* leak: a planted secret's bytes turned up in what the command wrote.

Tamperings: byte flips, truncation, emptying, a slice repeated, YAML alias bombs and deep nesting in
``config.yaml``, extreme numbers in ``config.yaml``/``spec.json``/``codec.json``, a file replaced by a FIFO or a
symbolic link (to a secret, to ``/dev/zero``), a sample replaced by a link to a secret, a folder where a file
should be. Usage::

    OMP_NUM_THREADS=1 python bench/tamper_rundirs.py RUN --seed 5 --count 200
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as futures
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FILES = ("config.yaml", "spec.json", "codec.json", "best.pt", "last.pt", "metrics.jsonl", "data.json")
COMMANDS = ("info", "generate", "report", "plot")
SECRET = b"SECRET-0123456789-do-not-copy"

_WRAPPER = r"""
import json, os, resource, signal, subprocess, sys, time
timeout, cap, cmd = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
def setup():
    os.setsid()
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=setup)
try:
    out, err = p.communicate(timeout=timeout); rc = p.returncode
except subprocess.TimeoutExpired:
    os.killpg(p.pid, signal.SIGKILL); out, err = p.communicate(); rc = None
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
json.dump({"rc": rc, "peak_mb": peak, "stderr": err.decode("utf-8", "replace")}, sys.stdout)
"""


def alias_bomb() -> str:
    lines = ["_b0: &b0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"_b{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def tamper(rng: random.Random, run: Path, secret: Path) -> str:
    """Apply one random tampering to the run copy ``run``; returns what was done."""
    kind = rng.choice(["flip", "truncate", "empty", "repeat", "bomb", "deep", "extreme", "fifo", "link-secret",
                       "link-zero", "folder", "sample-link"])
    name = rng.choice(FILES)
    path = run / name
    if kind == "sample-link":
        samples = sorted((run / "samples").glob("*"))
        target = rng.choice(samples) if samples else run / "samples" / "x.mid"
        target.unlink(missing_ok=True)
        target.symlink_to(secret)
        return f"{kind} samples/{target.name}"
    if kind in ("bomb", "deep"):
        path = run / "config.yaml"
        text = path.read_text()
        path.write_text(alias_bomb() + text.replace("lr:", "lr: *b9\n  was_lr:", 1) if kind == "bomb"
                        else "x: " + "[" * 20000 + "]" * 20000 + "\n" + text)
        return f"{kind} config.yaml"
    if kind == "extreme":
        path = run / rng.choice(["config.yaml", "spec.json", "codec.json"])
        text = path.read_text()
        numbers = [i for i, c in enumerate(text) if c.isdigit()]
        if numbers:
            i = rng.choice(numbers)
            text = text[:i] + rng.choice(["1e308", "-1", "0", "99999999999", "nan", "1e-300"]) + text[i + 1:]
        path.write_text(text)
        return f"{kind} {path.name}"
    data = path.read_bytes() if path.is_file() else b""
    path.unlink(missing_ok=True)
    if kind == "flip" and data:
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(b))
    elif kind == "truncate":
        path.write_bytes(data[: rng.randrange(max(len(data), 1))])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "repeat" and data:
        i = rng.randrange(len(data))
        path.write_bytes(data[:i] + data[i:i + 64] * rng.randint(100, 20000) + data[i:])
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "link-secret":
        path.symlink_to(secret)
    elif kind == "link-zero":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(data)
    return f"{kind} {name}"


def run_case(args, i: int, work: Path, secret: Path) -> dict:
    rng = random.Random(args.seed * 1_000_003 + i)
    case = work / f"case{i}"
    run = case / "run"
    shutil.copytree(args.run, run, symlinks=True)
    what = tamper(rng, run, secret)
    command = rng.choice(COMMANDS)
    out = case / "out"
    cli = {"info": ["info", run], "generate": ["generate", run, "-n", "2", "-o", out, "-q"],
           "report": ["report", run, "-o", out, "-q"], "plot": ["plot", run, "-o", out / "c.svg"]}[command]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", _WRAPPER, str(args.hang_seconds), str(args.mem_cap_mb << 20),
                           sys.executable, "-m", "seqstudio", *map(str, cli)], capture_output=True, env=env,
                          timeout=args.hang_seconds + 60)
    result = json.loads(done.stdout)
    err = result["stderr"]
    errors = [line for line in err.splitlines() if line.startswith("Error")]
    leaked = any(SECRET in p.read_bytes() for p in out.rglob("*") if p.is_file() and not p.is_symlink()) \
        if out.exists() else False
    if result["rc"] is None:
        status = "hang"
    elif result["peak_mb"] > args.mem_limit_mb or "MemoryError" in err:
        status = "memory"
    elif "Traceback" in err:
        status = "traceback"
    elif leaked:
        status = "leak"
    elif result["rc"] == 0:
        status = "ok"
    elif result["rc"] == 1 and len(errors) == 1:
        status = "clean error"
    else:
        status = f"rc {result['rc']}"
    shutil.rmtree(case, ignore_errors=True)
    return {"case": i, "tampering": what, "command": command, "status": status, "peak_mb": result["peak_mb"],
            "error": (errors or err.strip().splitlines()[-1:] or [""])[0][:300]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a trained run directory (copied, never changed)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--hang-seconds", type=float, default=120.0)
    parser.add_argument("--mem-limit-mb", type=int, default=2048)
    parser.add_argument("--mem-cap-mb", type=int, default=3000)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seqstudio-tamper-"))
    secret = work / "secret.bin"
    secret.write_bytes(SECRET * 100)
    with futures.ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda i: run_case(args, i, work, secret), range(args.count)))
    shutil.rmtree(work, ignore_errors=True)
    totals = collections.Counter(r["status"] for r in results)
    for r in results:
        if args.verbose or r["status"] not in ("ok", "clean error"):
            print(json.dumps(r))
    print(json.dumps({"seed": args.seed, "count": args.count, **dict(sorted(totals.items()))}))
    return 0 if set(totals) <= {"ok", "clean error"} else 1


if __name__ == "__main__":
    sys.exit(main())
