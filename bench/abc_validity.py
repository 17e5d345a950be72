"""Share of generated ABC tunes that parse (music21) and convert to a MIDI file with at least one note.

    python bench/abc_validity.py RUN_DIR -n 100 [--seed 0] [--temperature 1.0] [--length STEPS] [--out DIR]

RUN_DIR is a text-domain run trained on ABC tunes (e.g. on `seqstudio data build essen-folk-abc DIR`). Prints
one JSON object: tunes, valid, share_valid, finished (share of tunes that ended with <eos> before the length
limit), mean_chars, mean_notes_valid and the commonest reasons for invalid tunes. With --out, every tune is
written as tune-NNN.abc and each valid one also as tune-NNN.mid.

As a library: ``abc_validity(run_dir, n=100, ...)`` returns the same dict.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import seqstudio
from seqstudio_text.abc import abc_to_midi
from seqstudio_text.metrics import validity_report


def abc_validity(run_dir: str | Path, n: int = 100, seed: int = 0, temperature: float = 1.0,
                 length: int | None = None, out: str | Path | None = None, device: str = "cpu") -> dict:
    run = seqstudio.load(run_dir, device=device)
    length = length or run.codec.window_length
    tunes = seqstudio.generate(run, n=n, length=length, temperature=temperature, seed=seed)
    report = validity_report(tunes)
    # A tune shorter than the generated token count stopped at <eos>; one as long was cut off by the limit.
    steps = [run.codec.encode(t).shape[0] for t in tunes]
    report.update(run_dir=str(run_dir), backend=run.spec.backend_name, codec=run.spec.codec_name,
                  temperature=temperature, seed=seed, length=length,
                  finished=sum(s < length for s in steps) / n,
                  mean_chars=sum(len(t) for t in tunes) / n)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for i, tune in enumerate(tunes):
            (out / f"tune-{i:03d}.abc").write_text(str(tune), encoding="utf-8")
            try:
                (out / f"tune-{i:03d}.mid").write_bytes(abc_to_midi(tune))
            except Exception:  # invalid ABC, or MIDI that does not read back: only valid tunes get a .mid
                pass
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in report.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("-n", type=int, default=100, help="tunes to generate (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--length", type=int, help="tokens to generate (default: the run's training window)")
    parser.add_argument("--out", help="write the tunes (.abc) and the valid ones' MIDI (.mid) here")
    args = parser.parse_args()
    print(json.dumps(abc_validity(args.run_dir, args.n, args.seed, args.temperature, args.length, args.out)))


if __name__ == "__main__":
    main()
