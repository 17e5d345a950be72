"""Coconet: an orderless NADE trained on random masks, sampled by blocked Gibbs (Huang et al. 2017).

A model that only continues a prime cannot harmonise a melody: the alto at bar 3 must fit the soprano of bar 4.
Coconet learns ``p(x_masked | x_known)`` for *any* mask, so the same network writes the three lower voices under
a given soprano, regenerates bars 5-8 between bars 1-4 and 9-12, or (all positions masked) a whole piece.

Positions are (step, spec part) pairs, so the family knows no domain: a codec says which positions a voice or a
bar is (``Codec.voice_parts``, ``Codec.bar_steps``) and this fills whatever is masked. Every part type works
through its head (``heads.OutputHead.part_log_probs``); the MIDI ``voices`` codec (a pitch and an onset bit per
voice per step) is what it was built for.

Training: per window, a share ``r ~ U(0, 1)`` of the positions is hidden (at least one); the network sees the
known positions' features (hidden ones zeroed) and a mask channel per part, and is scored on the hidden positions
only, weighted ``D / M`` (positions / hidden) as the orderless NADE's estimate of the whole piece's negative
log-likelihood (Uria et al. 2014; Coconet section 4), reported per step.

Network: a stack of non-causal dilated 1-D convolutions over time (residual, pre-norm, GELU), so every step sees
``1 + (kernel - 1) * sum(dilations)`` steps around it (77 at the defaults). Coconet convolves over time x pitch;
over time only, the network does not assume the parts are pitches.

Sampling (``infill``, ``sampler: gibbs``): every hidden position is first drawn given the known ones alone, then
``gibbs_steps`` rounds of blocked Gibbs: a random block of the hidden positions (a share annealed linearly from
``gibbs_max`` to ``gibbs_min`` over the first ``gibbs_anneal`` of the rounds, Coconet's schedule) is hidden again
and redrawn given everything else. ``sampler: ancestral`` draws each hidden position once instead, one network
pass each, in a random order (exact for the orderless NADE; Gibbs from nothing drifts towards held notes,
BENCHMARKS.md). Known positions are never touched. ``sample`` is ``infill`` with the prime known and the rest hidden.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..heads import build_head
from .autoregressive import expand_prime
from .base import Backend, SamplingOptions, check_in_range, check_positive


SAMPLERS = ("gibbs", "ancestral")


@dataclasses.dataclass
class CoconetConfig:
    hidden_size: int = 128  # channels of every convolution
    layers: int = 8  # residual convolution blocks
    kernel_size: int = 3  # odd: each block looks as far back as ahead
    dilation_cycle: int = 5  # dilations 1, 2, 4, ... 2^(cycle-1), then again
    dropout: float = 0.1
    mixtures: int = 5  # Gaussian-mixture components for real-valued parts
    sampler: str = "gibbs"  # gibbs | ancestral (one hidden position per pass, in a random order: exact, slower)
    gibbs_steps: int = 96  # blocked Gibbs rounds after the first draw (Coconet: more is better, costlier)
    gibbs_max: float = 0.9  # share of the hidden positions redrawn in the first round
    gibbs_min: float = 0.05  # ... and from the end of the annealing on
    gibbs_anneal: float = 0.7  # the share falls linearly over this fraction of the rounds

    def __post_init__(self):
        check_positive(self, ("hidden_size", "layers", "kernel_size", "dilation_cycle", "mixtures"))
        check_in_range(self, "dropout", 0.0, 1.0)
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"backend.kernel_size must be odd, got {self.kernel_size}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"backend.sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.gibbs_steps < 0:
            raise ConfigError(f"backend.gibbs_steps must be >= 0, got {self.gibbs_steps}")
        if not 0.0 < self.gibbs_min <= self.gibbs_max <= 1.0:
            raise ConfigError(f"need 0 < backend.gibbs_min <= backend.gibbs_max <= 1, got "
                              f"{self.gibbs_min}, {self.gibbs_max}")
        check_in_range(self, "gibbs_anneal", 1e-6, 1.000001)


class ResidualConv(nn.Module):
    """``h + conv1x1(dropout(gelu(conv_k,d(norm(h)))))`` over time, padded so the length is kept."""

    def __init__(self, width: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.conv = nn.Conv1d(width, width, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.mix = nn.Conv1d(width, width, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.conv(self.norm(h).transpose(1, 2)))
        y = self.mix(self.dropout(y)).transpose(1, 2)
        return (h + y) * valid  # padding stays zero, so it never reads as a note


class Coconet(Backend):
    name = "coconet"
    description = ("orderless NADE over (step, part) positions with blocked Gibbs sampling (Coconet): harmonises "
                   "a melody, fills bars")
    Config = CoconetConfig
    can_infill = True

    def __init__(self, spec, config: CoconetConfig, conditions=None, text=None):
        super().__init__(spec, config, conditions, text)
        c = config
        n_parts = len(spec.parts)
        # Which part each feature column and each storage column belongs to: a (step, part) mask -> columns.
        feature_part, storage_part = [], []
        for i, (part, _) in enumerate(spec.storage_slices()):
            feature_part += [i] * part.feature_width
            storage_part += [i] * part.storage_width
        self.register_buffer("feature_part", torch.tensor(feature_part), persistent=False)
        self.register_buffer("storage_part", torch.tensor(storage_part), persistent=False)
        self.inp = nn.Linear(spec.feature_width + n_parts, c.hidden_size)
        self.blocks = nn.ModuleList([ResidualConv(c.hidden_size, c.kernel_size, 2 ** (i % c.dilation_cycle),
                                                  c.dropout) for i in range(c.layers)])
        self.norm = nn.LayerNorm(c.hidden_size)
        self.head = build_head(spec, c.hidden_size, c.mixtures)

    @classmethod
    def tiny_config(cls):
        return cls.Config(hidden_size=16, layers=2, mixtures=2, gibbs_steps=4)

    @property
    def n_parts(self) -> int:
        return len(self.spec.parts)

    def params(self, x: torch.Tensor, known: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Head parameters at every position ``[B, T, n_params]`` given the ``known`` (step, part) positions of
        ``x`` (``[B, T, storage_width]``; what is not known is hidden from the network)."""
        if valid is None:
            valid = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        features = self.spec.to_features(x) * known[..., self.feature_part]
        v = valid.unsqueeze(-1).to(features.dtype)
        h = self.inp(torch.cat([features, known.to(features.dtype)], dim=-1)) * v
        for block in self.blocks:
            h = block(h, v)
        return self.head(self.norm(h))

    # -- training ---------------------------------------------------------------------------------------------
    def random_hidden(self, valid: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Coconet's training masks ``[B, T, n_parts]``: each window hides a share ``r ~ U(0, 1)`` of its valid
        positions, and always at least one."""
        B, T = valid.shape
        u = torch.rand(B, T, self.n_parts, device=valid.device, generator=generator)
        r = torch.rand(B, 1, 1, device=valid.device, generator=generator)
        u = torch.where(valid.unsqueeze(-1), u, torch.full_like(u, 2.0))
        least = u.flatten(1).min(dim=1).values.view(B, 1, 1)
        return ((u < r) | (u == least)) & valid.unsqueeze(-1)

    def loss(self, batch, step=None):
        x, valid = batch["x"], batch["mask"].bool()
        # Held-out figures use the same masks every time (a fixed generator), so best.pt follows the model.
        generator = None if self.training else torch.Generator(device=x.device).manual_seed(0)
        hidden = self.random_hidden(valid, generator)
        logp = self.head.part_log_probs(self.params(x, ~hidden, valid), x)
        positions = valid.sum(1).to(logp.dtype) * self.n_parts
        weight = positions / hidden.sum((1, 2)).clamp(min=1).to(logp.dtype)
        nll = -(logp * hidden).sum((1, 2)) * weight
        steps = valid.sum()
        loss = nll.sum() / steps.clamp(min=1)
        stats = {"nll": nll.sum().detach(), "steps": steps.detach().float(),
                 "sequences": torch.tensor(float(x.shape[0]), device=x.device)}
        return loss, stats

    # -- infilling --------------------------------------------------------------------------------------------
    def _redraw(self, x, block, options, generator, visible=None):
        """``x`` with the ``block`` positions drawn given the ``visible`` ones (default: every other position)."""
        params = self.params(x, ~block if visible is None else visible)
        if options.temperature <= 0:
            draw = self.head.mode(params)
        else:
            draw = self.head.sample(params, options.temperature, generator, options.bias, **options.truncation)
        return torch.where(block[..., self.storage_part], draw.to(x.dtype), x)

    @torch.no_grad()
    def infill(self, x, known, options=SamplingOptions(), generator=None):
        x = x.to(self.device, torch.float32).clone()
        known = known.to(self.device).bool()
        free = ~known
        if not bool(free.any()):
            return x
        if self.config.sampler == "ancestral":
            return self._ancestral(x, known, options, generator)
        x = self._redraw(x, free, options, generator)
        c = self.config
        for i in range(c.gibbs_steps):
            share = max(c.gibbs_min, c.gibbs_max - (c.gibbs_max - c.gibbs_min) * i / (c.gibbs_anneal * c.gibbs_steps))
            block = free & (torch.rand(free.shape, device=self.device, generator=generator) < share)
            if bool(block.any()):
                x = self._redraw(x, block, options, generator)
        return x

    def _ancestral(self, x, known, options, generator):
        """Every hidden position drawn once, one per network pass, in a random order per sequence, each given the
        known positions and those drawn before it: a draw from the orderless NADE itself (no chain to drift)."""
        n, T, P = known.shape
        order, counts = _random_order(known, generator)
        seen = known.reshape(n, -1).clone()
        for k in range(int(counts.max())):
            position = order[:, k : k + 1]
            active = (k < counts).unsqueeze(1)
            block = torch.zeros_like(seen).scatter_(1, position, active)
            x = self._redraw(x, block.view(n, T, P), options, generator, visible=seen.view(n, T, P))
            seen |= block
        return x

    @torch.no_grad()
    def infill_nll(self, x, known, generator=None) -> torch.Tensor:
        """``-log p(x_hidden | x_known)`` per sequence ``[n]`` in nats, exact for one random order of the hidden
        positions (ancestral: each is scored given the known ones and those before it, one network pass each)."""
        x = x.to(self.device, torch.float32)
        known = known.to(self.device).bool()
        n, T, P = known.shape
        order, counts = _random_order(known, generator)
        seen = known.reshape(n, -1).clone()
        nll = torch.zeros(n, device=self.device)
        for k in range(int(counts.max()) if n else 0):
            logp = self.head.part_log_probs(self.params(x, seen.view(n, T, P)), x).reshape(n, -1)
            position = order[:, k : k + 1]
            active = k < counts
            nll -= torch.where(active, logp.gather(1, position)[:, 0], torch.zeros_like(nll))
            seen.scatter_(1, position, active.unsqueeze(1) | seen.gather(1, position))
        return nll

    @torch.no_grad()
    def sample(self, n, options=SamplingOptions(), generator=None):
        prime = expand_prime(options.prime, n, self.device)
        t0 = prime.shape[1] if prime is not None else 0
        x = torch.zeros(n, t0 + options.length, self.spec.storage_width, device=self.device)
        known = torch.zeros(n, t0 + options.length, self.n_parts, dtype=torch.bool, device=self.device)
        if prime is not None:
            x[:, :t0] = prime
            known[:, :t0] = True
        return self.infill(x, known, options, generator)


def _random_order(known: torch.Tensor, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence, its hidden (step, part) positions (flat indices) in a random order, first; and their counts."""
    n = known.shape[0]
    u = torch.rand(n, known[0].numel(), device=known.device, generator=generator)
    u = torch.where(known.reshape(n, -1), torch.full_like(u, 2.0), u)
    return u.argsort(dim=1), (~known).reshape(n, -1).sum(1)
