"""The seq-VAE encoder's cost, packed vs unpacked (``seqstudio/backends/bidirectional.py``), and what threads do
to an LSTM step on a shared CPU. Forward + backward, batch 64, hidden 256, seconds per call.

    python bench/seqvae_encoder.py              # packed vs unpacked, one thread
    python bench/seqvae_encoder.py --threads 1 2   # the seq-VAE's text LSTMs at 1 and 2 threads
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.nn.utils.rnn import pack_padded_sequence

from seqstudio.backends.bidirectional import BidirectionalFinalStates


def seconds(f, n: int = 3) -> float:
    f()
    start = time.perf_counter()
    for _ in range(n):
        f()
    return round((time.perf_counter() - start) / n, 3)


def packed_vs_unpacked() -> None:
    torch.set_num_threads(1)
    for T, V, full in [(64, 176, True), (64, 176, False), (256, 80, False)]:
        x = torch.randn(64, T, V)
        lengths = torch.full((64,), T) if full else torch.randint(T // 3, T + 1, (64,))
        enc = torch.nn.LSTM(V, 256, batch_first=True, bidirectional=True)
        final = BidirectionalFinalStates(enc)

        def packed():
            _, (h, _) = enc(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
            h.sum().backward()

        def unpacked():
            final(enc, x, lengths).sum().backward()

        print(f"64 x {T} steps, width {V}, {'all full' if full else 'mixed lengths'}: "
              f"packed {seconds(packed)} s, unpacked {seconds(unpacked)} s", flush=True)


def threads(counts: list[int]) -> None:
    x = torch.randn(64, 256, 80)
    enc = torch.nn.LSTM(80, 256, batch_first=True, bidirectional=True)
    dec = torch.nn.LSTM(80 + 64, 256, num_layers=2, batch_first=True)
    xd = torch.randn(64, 256, 144)

    def step():
        y, _ = enc(x)
        y2, _ = dec(xd)
        (y.sum() + y2.sum()).backward()

    for n in counts:
        torch.set_num_threads(n)
        print(f"{n} thread(s): {seconds(step)} s a step", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", help="time the text LSTMs at these thread counts")
    args = parser.parse_args()
    threads(args.threads) if args.threads else packed_vs_unpacked()


if __name__ == "__main__":
    main()
