"""What every step-by-step generator shares: teacher forcing, the stats it reports, and the prime-then-loop sampler.

Every built-in family generates one step at a time from a recurrent state, and trains teacher-forced on the
whole window at once. The two must agree on the transition, so a backend writes it once, as ``step``:

    step(state, pending, options, generator) -> (head parameters for the next step, new state)

``pending`` is the last step (feature layout, ``[n, feature_width]``) the state has not consumed yet, or
``None`` when there is none (the very start, or a prime the state has consumed whole). ``start`` gives the
first state and pending step, after running the prime (if any) teacher-forced. ``sample`` is then the same
loop for every family: draw from the head, hand the draw to ``step`` as the next pending step.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import torch
import torch.nn as nn

from ..guidance import check_guidance, paired_noise
from ..heads import OutputHead
from ..spec import FeatureSpec
from .base import Backend, SamplingOptions

Step = Callable[[Any, torch.Tensor | None], tuple[torch.Tensor, Any]]


def shift_right(features: torch.Tensor) -> torch.Tensor:
    """Teacher forcing's inputs: step t sees step t - 1, and step 0 a zero vector (``[B, T, F]``)."""
    return torch.cat([torch.zeros_like(features[:, :1]), features[:, :-1]], dim=1)


def likelihood_stats(head: OutputHead, params: torch.Tensor, x: torch.Tensor, mask: torch.Tensor,
                     nll: torch.Tensor, kl: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The statistics of a likelihood-trained batch, as detached sums (see ``base``'s convention): ``nll``,
    ``kl`` (latent models), ``steps``, ``sequences`` and the heads' reconstruction ``accuracy``."""
    acc_num, acc_den = head.accuracy_stats(params, x, mask)
    stats = {"nll": nll.detach()}
    if kl is not None:
        stats["kl"] = kl.detach()
    stats.update(steps=mask.sum().detach().float(), sequences=torch.tensor(float(x.shape[0]), device=x.device),
                 accuracy_num=acc_num.detach().float(), accuracy_den=acc_den.detach().float())
    return stats


class LSTMStateFromVector(nn.Linear):
    """An ``nn.LSTM``'s initial ``(h, c)`` from a vector per sequence (a latent, or noise): ``tanh`` of one linear
    map, as MusicVAE's decoder does. A Linear subclass, so checkpoints keep the keys ``NAME.weight/bias``."""

    def __init__(self, in_features: int, layers: int, size: int):
        super().__init__(in_features, 2 * layers * size)
        self.layers, self.size = layers, size

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        state = torch.tanh(super().forward(z)).view(z.shape[0], 2, self.layers, self.size)
        h, cell = state.permute(1, 2, 0, 3).contiguous()
        return h, cell


def cat_condition(x: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
    """``x`` (``[B, F]`` or batch-first ``[B, T, F]``) with the condition embedding ``e`` (``[B, E]``) appended to
    every step; ``x`` unchanged for an unconditional model (``e`` None)."""
    if e is None:
        return x
    if x.dim() == 3:
        e = e.unsqueeze(1).expand(-1, x.shape[1], -1)
    return torch.cat([x, e.to(x.dtype)], dim=-1)


def expand_prime(prime: torch.Tensor | None, n: int, device) -> torch.Tensor | None:
    """A ``[1 or n, T0, D]`` prime on ``device``, as ``n`` rows."""
    if prime is None:
        return None
    prime = prime.to(device)
    return prime.expand(n, -1, -1) if prime.shape[0] == 1 else prime


@torch.no_grad()
def sample_loop(spec: FeatureSpec, head: OutputHead, step: Step, state: Any, pending: torch.Tensor | None,
                options: SamplingOptions, generator: torch.Generator | None = None,
                prime: torch.Tensor | None = None) -> torch.Tensor:
    """``options.length`` steps drawn from ``head`` after ``state``; the prime (already run into ``state``) is
    kept verbatim in front. Returns storage layout ``[n, T0 + length, storage_width]``."""
    outputs = [prime] if prime is not None else []
    for _ in range(options.length):
        params, state = step(state, pending)
        x_t = head.sample(params, options.temperature, generator, options.bias, **options.truncation)
        outputs.append(x_t.unsqueeze(1))
        pending = spec.to_features(x_t)
    return torch.cat(outputs, dim=1)


class AutoregressiveBackend(Backend):
    """A backend that samples step by step: implement ``start`` and ``step``; ``sample`` is inherited.

    Requires ``self.head`` (the ``OutputHead`` of ``build_head``).
    """

    guides = True  # classifier-free guidance through ``step`` (``guided_sample``)

    def start(self, n: int, prime: torch.Tensor | None, options: SamplingOptions,
              generator: torch.Generator | None) -> tuple[Any, torch.Tensor | None]:
        """``(state, pending)`` before the first generated step; ``prime`` (``[n, T0, D]`` or ``None``) is to be
        run into the state teacher-forced."""
        raise NotImplementedError

    def step(self, state: Any, pending: torch.Tensor | None, options: SamplingOptions,
             generator: torch.Generator | None) -> tuple[torch.Tensor, Any]:
        """Consume ``pending`` (if any), return the head parameters ``[n, n_params]`` of the next step and the new
        state. Must be the transition the training pass computes (tests compare the two)."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n, options=SamplingOptions(), generator=None):
        prime = expand_prime(options.prime, n, self.device)
        if options.guidance == 0.0:  # only the unconditional row counts: plain sampling of "unknown", bit for bit
            check_guidance(options.guidance, self.conditions, self.text_spec is not None)
            asked = self.condition_indices(options.condition, n)
            options = dataclasses.replace(options, condition=torch.zeros_like(asked), guidance=1.0)
        if options.guidance != 1.0:
            return self.guided_sample(n, prime, options, generator)
        state, pending = self.start(n, prime, options, generator)
        return self.continue_from(state, pending, options, generator, prime)

    @torch.no_grad()
    def guided_sample(self, n: int, prime: torch.Tensor | None, options: SamplingOptions,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """Classifier-free guidance (``seqstudio.guidance``): rows ``[0, n)`` ask for ``options.condition``,
        rows ``[n, 2n)`` for "unknown" (what condition dropout trained); each step the head draws from their
        predictions mixed with ``options.guidance`` and the draw feeds both rows. Latent and noise draws are
        shared by the two rows (``sampling_noise``), so they differ only in the condition."""
        check_guidance(options.guidance, self.conditions, self.text_spec is not None)
        asked = self.condition_indices(options.condition, n)
        both = dataclasses.replace(options, condition=torch.cat([asked, torch.zeros_like(asked)]))
        doubled_prime = torch.cat([prime, prime]) if prime is not None else None
        outputs = [prime] if prime is not None else []
        with paired_noise():
            state, pending = self.start(2 * n, doubled_prime, both, generator)
            for _ in range(options.length):
                params, state = self.step(state, pending, both, generator)
                x_t = self.head.guided_sample(params[:n], params[n:], options.guidance, options.temperature,
                                              generator, options.bias, **options.truncation)
                outputs.append(x_t.unsqueeze(1))
                pending = self.spec.to_features(x_t).repeat(2, 1)
        return torch.cat(outputs, dim=1)

    @torch.no_grad()
    def continue_from(self, state: Any, pending: torch.Tensor | None, options: SamplingOptions,
                      generator: torch.Generator | None = None, prime: torch.Tensor | None = None) -> torch.Tensor:
        """``options.length`` steps generated with ``self.step`` from ``(state, pending)`` (after ``prime``)."""
        return sample_loop(self.spec, self.head, lambda s, p: self.step(s, p, options, generator), state, pending,
                           options, generator, prime)
