"""The final states of a bidirectional ``nn.LSTM`` over padded sequences of different lengths, without packing.

``pack_padded_sequence`` is what PyTorch offers for this, and on CPU it leaves oneDNN's fused LSTM for a slow
path: a 256-wide bidirectional encoder over a batch of 64 x 256 steps took 13.7 s forward + backward packed
against 0.68 s unpacked (one thread; BENCHMARKS.md, "Defaults"), which made the seq-VAE on text 16x slower per
token than the RNN. Instead each direction runs as one plain LSTM call: forward over the batch as it is (the
state at step ``length - 1`` never saw the padding), backward over each sequence reversed within its own length
(so the padding stays at the end), both read at ``length - 1``. The same weights, the same values as packing.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.func import functional_call


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``x[b, :lengths[b]]`` reversed, padding left where it was: ``[B, T, D]``."""
    T = x.shape[1]
    t = torch.arange(T, device=x.device).unsqueeze(0)
    L = lengths.to(x.device).unsqueeze(1)
    index = torch.where(t < L, L - 1 - t, t)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class BidirectionalFinalStates:
    """``final(lstm, x, lengths)`` -> ``h`` ``[2, B, H]`` (forward, backward): what ``nn.LSTM`` returns as ``h_n``
    for one bidirectional layer over the same sequences packed.

    For CPU: on CUDA cuDNN runs packed sequences in its fused kernels (and wants its weights in one flat block,
    which the per-direction call below would not give it), so the caller packs there."""

    def __init__(self, lstm: nn.LSTM):
        if not (lstm.bidirectional and lstm.num_layers == 1 and lstm.batch_first):
            raise ValueError("BidirectionalFinalStates takes a one-layer, batch_first, bidirectional nn.LSTM")
        # a parameter-free template: functional_call gives it each direction's weights at call time
        with torch.device("meta"):
            self.template = nn.LSTM(lstm.input_size, lstm.hidden_size, batch_first=True, bias=lstm.bias)
        self.names = [n for n, _ in self.template.named_parameters()]

    def _direction(self, lstm: nn.LSTM, suffix: str, x: torch.Tensor):
        weights = {name: getattr(lstm, name + suffix) for name in self.names}
        out, _ = functional_call(self.template, weights, (x,))
        return out

    def __call__(self, lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor):
        if int(lengths.min()) == x.shape[1]:  # no padding (most music windows): one fused bidirectional call
            _, (h, _) = lstm(x)
            return h
        last = (lengths.to(x.device).long() - 1).clamp(min=0)
        rows = torch.arange(x.shape[0], device=x.device)
        forward = self._direction(lstm, "", x)[rows, last]
        backward = self._direction(lstm, "_reverse", reverse_within_lengths(x, lengths))[rows, last]
        return torch.stack([forward, backward])
