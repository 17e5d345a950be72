"""The text window layer a backend stacks under itself to write a given text (Graves 2013, section 5.1).

Graves' synthesis network: the first LSTM layer reads the previous point and the previous window vector
``w_{t-1}``; its output ``h1_t`` sets the attention window (``seqstudio.attention``), giving ``w_t``; the other
layers and the heads read ``[h1_t, w_t]``. Here that first layer is ``TextWindowLayer``; the backend above it
(``rnn``: its LSTM and decoder; ``vrnn``: its posterior, recurrence, prior and decoder) reads the per-step
context ``ctx_t = [h1_t, w_t]`` as an extra input, on stacked tensors:

    h1_t, w_t = Window(x_{t-1}, w_{t-1}, h1_{t-1})        step by step (w_{t-1} feeds back)
    everything else                                        on ``ctx`` [B, T, H + S] in one call

Only this layer runs step by step in training; the x-dependent part of its gates is one matmul over the whole
sequence before the loop, and the loop holds no host sync. ``TextSampling`` is the generation loop of such a
backend: a line ends once its window has passed its last character (``AttentionWindow.finished``, Graves'
rule) and, when the codec has segments (``Codec.segment_ends``: pen strokes), at the first segment end from
then on, so the pen finishes the word it is writing (``LineEnd``); it reports each line's length.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..attention import AttentionWindow
from ..guidance import check_guidance
from .autoregressive import expand_prime
from .window_loop import fused_window

CHECK_EVERY = 8  # generation looks at the stopping rule (a host sync) every this many steps


class TextWindowLayer(nn.Module):
    """LSTM layer + K Gaussian windows over a one-hot symbol sequence. ``context_size`` = H + vocabulary.

    ``run`` without ``trace`` goes through the fused loop (``window_loop.py``: one autograd node with a
    hand-written backward, the same values and gradients); ``fused = False`` runs the plain autograd loop over
    ``_cell`` instead, the reference it is tested against and what ``trace`` and ``step`` always use."""

    fused = True

    def __init__(self, text_spec, feature_width: int, hidden_size: int):
        super().__init__()
        S, H, K = text_spec.vocab_size, hidden_size, text_spec.mixtures
        self.hidden_size, self.symbol_size = H, S
        self.from_x = nn.Linear(feature_width, 4 * H)  # over the whole sequence, before the loop
        self.from_wh = nn.Linear(S + H, 4 * H, bias=False)  # [w_{t-1} | h_{t-1}] in one matmul per step
        self.window = AttentionWindow(H, S, K)
        with torch.no_grad():
            self.from_x.bias.zero_()
            self.from_x.bias[H : 2 * H].fill_(1.0)  # forget-gate bias 1
            # the window starts moving at the training data's characters per step (exp(kappa_hat) = rate)
            self.window.params.bias[2 * K :].fill_(math.log(max(text_spec.chars_per_step, 1e-4)))
            self.window.params.weight[2 * K :].mul_(0.1)

    @property
    def context_size(self) -> int:
        return self.hidden_size + self.symbol_size

    def symbols(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``text`` [B, U] ids -> (one-hot [B, U, S], mask [B, U])."""
        mask = text > 0
        return F.one_hot(text.clamp(min=0, max=self.symbol_size - 1), self.symbol_size).float(), mask

    def initial(self, n: int, device) -> tuple:
        """(h, c, kappa, w) before the first step."""
        h = torch.zeros(n, self.hidden_size, device=device)
        kappa, w = self.window.initial(n, device)
        return h, torch.zeros_like(h), kappa, w

    def _cell(self, gx, state, onehot, mask):
        h, c, kappa, w = state
        H = self.hidden_size
        gates = gx + self.from_wh(torch.cat([w, h], dim=-1))
        ifo, g = gates.split([3 * H, H], dim=-1)
        i, f, o = torch.sigmoid(ifo).chunk(3, dim=-1)
        c = f * c + i * torch.tanh(g)
        h = o * torch.tanh(c)
        w, kappa, phi = self.window.step(h, kappa, onehot, mask)
        return (h, c, kappa, w), phi

    def run(self, previous: torch.Tensor, text: torch.Tensor, state=None, trace: bool = False):
        """Teacher-forced over ``previous`` [B, T, F] (step t holds x_{t-1}: ``shift_right`` of the features).
        Returns ``ctx`` [B, T, H + S], the final state, and with ``trace`` the positions ``kappa`` [B, T, K] and
        weights ``phi`` [B, T, U + 1]."""
        B, T = previous.shape[:2]
        onehot, mask = self.symbols(text)
        state = state if state is not None else self.initial(B, previous.device)
        gx = self.from_x(previous).transpose(0, 1)  # [T, B, 4H], time-major: one contiguous slice per step
        if self.fused and not trace and T > 0:
            ids = text.clamp(min=0, max=self.symbol_size - 1)
            params = self.window.params
            out, state = fused_window(gx, ids, mask, onehot, state, self.from_wh.weight, params.weight,
                                      params.bias, self.window.kappa_scale)
            return out.transpose(0, 1), state
        ctx, kappas, phis = [], [], []
        for gx_t in gx.unbind(0):
            state, phi = self._cell(gx_t, state, onehot, mask)
            ctx.append(torch.cat([state[0], state[3]], dim=-1))
            if trace:
                kappas.append(state[2])
                phis.append(phi)
        out = torch.stack(ctx, dim=1) if ctx else previous.new_zeros(B, 0, self.context_size)
        if trace:
            return out, state, torch.stack(kappas, dim=1), torch.stack(phis, dim=1)
        return out, state

    def step(self, previous: torch.Tensor, state, onehot, mask):
        """One step on ``previous`` [B, F] (x_{t-1}); returns (ctx_t [B, H + S], state, phi [B, U + 1])."""
        state, phi = self._cell(self.from_x(previous), state, onehot, mask)
        return torch.cat([state[0], state[3]], dim=-1), state, phi


class LineEnd:
    """Where each generated line ends, step by step, without a host sync.

    Graves' rule alone stops a line the step its window passes the last character; in sampling the window can
    run ahead of the pen (a biased sample writes more points per letter than training did), so that cut the
    last word short. Here a line ends at the first step, at or after the one where its window first passed the
    end (latched), whose point also ends a segment (the pen lifts), or ``wait`` steps after the pass when the
    pen never lifts (a hard cap on the points spent finishing), or at ``length`` (the line-length cap).
    ``wait=0`` or no segment information is Graves' rule alone.
    """

    def __init__(self, n: int, length: int, wait: int, device=None):
        self.length, self.wait = int(length), max(0, int(wait))
        self.passed_at = torch.full((n,), -1, dtype=torch.long, device=device)
        self.done_at = torch.full((n,), self.length, dtype=torch.long, device=device)

    def update(self, t: int, window_done: torch.Tensor, segment_end: torch.Tensor | None) -> None:
        """After step ``t`` (0-based): ``window_done`` [n] Graves' rule at this step, ``segment_end`` [n] (None:
        the codec has no segments) whether this step's point ends a segment."""
        self.passed_at = torch.where(window_done & (self.passed_at < 0), torch.full_like(self.passed_at, t),
                                     self.passed_at)
        passed = self.passed_at >= 0
        stop = passed & (t - self.passed_at >= self.wait)
        if segment_end is not None:
            stop = stop | (passed & segment_end.to(device=passed.device, dtype=torch.bool))
        else:
            stop = passed
        self.done_at = torch.where(stop & (self.done_at == self.length), torch.full_like(self.done_at, t + 1),
                                   self.done_at)

    def all_done(self) -> bool:
        return bool((self.done_at < self.length).all())  # a host sync: call it every few steps only


def text_tensor(backend, text: torch.Tensor | None, n: int) -> torch.Tensor:
    """``[n, U]`` ids on the backend's device (the run's example texts when none are given)."""
    if text is None:
        spec = backend.text_spec
        examples = list(spec.examples) or [spec.alphabet[:10]]
        text = spec.tensor([examples[i % len(examples)] for i in range(n)])
    text = text.to(backend.device).long()
    return text.expand(n, -1) if text.shape[0] == 1 and n != 1 else text


class TextSampling:
    """Generation for a backend with a ``text_layer``: its ``start``/``step`` keep the window state last in their
    state tuple as ``(layer_state, phi)``; this loop stops at Graves' rule or ``options.length``."""

    @torch.no_grad()
    def sample_lines(self, n, options, generator=None, segment_ends=None, wait: int = 0,
                     without_end=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x [n, T0 + T, D], lengths [n])``: each row's generated steps end where ``LineEnd`` says: after its
        window passed its text's last character, at the first point that ends a segment (``segment_ends``: the
        codec's ``Codec.segment_ends``, storage-layout steps -> bool; None or a None answer: no segments) or
        ``wait`` steps after the pass, or at ``options.length``. The prime (if any) is kept verbatim in front.

        ``without_end`` (the codec's ``Codec.without_end``) is applied to every drawn step before it is kept and
        fed back: the window decides where a line ends, so an end mark the model draws earlier (stroke-5's
        end-of-drawing state: a third of a trained model's lines drew one mid-line, BENCHMARKS.md) counts as
        a segment end instead of cutting the decoded line there."""
        check_guidance(options.guidance, self.conditions, has_text=True)
        prime = expand_prime(options.prime, n, self.device)
        state, pending = self.start(n, prime, options, generator)
        outputs = [prime] if prime is not None else []
        T0 = prime.shape[1] if prime is not None else 0
        end = LineEnd(n, options.length, wait, self.device)
        for t in range(options.length):
            params, state = self.step(state, pending, options, generator)
            x_t = self.head.sample(params, options.temperature, generator, options.bias, **options.truncation)
            if without_end is not None:
                x_t = without_end(x_t)
            outputs.append(x_t.unsqueeze(1))
            pending = self.spec.to_features(x_t)
            end.update(t, self.window_finished(state), segment_ends(x_t) if segment_ends is not None else None)
            if (t + 1) % CHECK_EVERY == 0 and end.all_done():
                break
        x = torch.cat(outputs, dim=1)
        return x, end.done_at.clamp(max=x.shape[1] - T0) + T0

    @torch.no_grad()
    def sample(self, n, options, generator=None):
        if self.text_spec is None:
            return super().sample(n, options, generator)
        x, lengths = self.sample_lines(n, options, generator)
        return x[:, : int(lengths.max())]

    def window_finished(self, state) -> torch.Tensor:
        return self.text_layer.window.finished(state[-1][1])


def cat_context(x: torch.Tensor, ctx: torch.Tensor | None) -> torch.Tensor:
    """``x`` ([B, F] or [B, T, F]) with the window context (same shape but for the last dimension) appended."""
    return x if ctx is None else torch.cat([x, ctx.to(x.dtype)], dim=-1)
