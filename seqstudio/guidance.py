"""Classifier-free guidance (Ho & Salimans 2022) for conditional runs: follow the asked condition more strongly.

Condition dropout (``train.condition_dropout``) trains an unconditional model inside the conditional one: the
"unknown" index of every attribute. At sampling, each of the ``n`` rows gets one extra batch row asking for
"unknown"; both run through the same backend step, and the head draws from the two predictions mixed with the
guidance scale ``W`` (``SamplingOptions.guidance``; ``--guidance W``):

    l = l_u + W (l_c - l_u)        (logits of categorical / Bernoulli parts; per key inside a NADE)

``W = 1`` is plain conditional sampling, ``W = 0`` the unconditional model, ``W > 1`` pushes the draws towards
what tells the asked condition from the others. At 0 and 1 only one of the two rows counts, so those run as
plain sampling (of "unknown", or of the asked condition) with no extra row: the same draws as unguided sampling,
bit for bit. (The guided loop agrees with them to float rounding only: a batch of 2n rows may round a matrix
product differently from a batch of n, so real-valued draws can differ in the last bits.) Mixtures guide their component
weights and means and keep the conditional scales (``part_heads.MixturePart.guide`` says why).

The draw of each step feeds both rows, so they stay one sequence. Latent and noise draws of a guided step
(a VRNN's z_t, a seq-VAE's z, a GAN's noise) go through ``sampling_noise``, which draws them once for the
``n`` rows and gives the unconditional row the same values: the two rows differ only in the condition, and at
``W = 0`` the generator's stream is consumed exactly as unconditional sampling consumes it (same seed, same
draws).
"""

from __future__ import annotations

import contextlib
import contextvars

import torch

from .errors import ConfigError

_PAIRED: contextvars.ContextVar[bool] = contextvars.ContextVar("seqstudio_paired_noise", default=False)


@contextlib.contextmanager
def paired_noise():
    """Inside this block the batch is ``[conditional rows; unconditional rows]``: ``sampling_noise`` gives both
    halves the same draws."""
    token = _PAIRED.set(True)
    try:
        yield
    finally:
        _PAIRED.reset(token)


def sampling_noise(shape, generator: torch.Generator | None = None, device=None, dtype=None,
                   batch_dim: int = 0) -> torch.Tensor:
    """``torch.randn(shape)``; in a guided step (``paired_noise``) the first half along ``batch_dim`` is drawn
    and repeated for the second (unconditional) half."""
    shape = tuple(shape)
    if not _PAIRED.get():
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)
    half = list(shape)
    half[batch_dim] //= 2
    draw = torch.randn(half, generator=generator, device=device, dtype=dtype)
    return torch.cat([draw, draw], dim=batch_dim)


def mix(conditional: torch.Tensor, unconditional: torch.Tensor, scale: float) -> torch.Tensor:
    """``u + scale (c - u)``, exact at both ends: ``scale`` 0 returns ``u``'s values and 1 ``c``'s, bit for bit
    (``torch.lerp`` computes from the nearer end), so W = 0 / 1 draw exactly what unguided sampling draws."""
    return torch.lerp(unconditional.float(), conditional.float(), float(scale))


def check_guidance(scale: float, conditions, has_text: bool = False, backend=None) -> None:
    """Refuse a guidance scale the run cannot honour, in one line: a run without embedded conditions, one trained
    with condition dropout 0 (it never learned the unconditional prediction, so "unknown" is untrained), a
    text-conditioned run (its line sampler is not guided), or a ``backend`` whose sampler does not declare
    ``guides``."""
    if scale == 1.0:
        return
    if scale < 0:
        raise ConfigError(f"--guidance must be >= 0 (1 = plain conditional sampling), got {scale:g}")
    if backend is not None and not backend.guides:
        raise ConfigError(f"backend {backend.name!r} does not support --guidance (its sampler does not declare "
                          f"`guides`); leave it at 1")
    if conditions is None or not conditions.conditions_backend:
        raise ConfigError("--guidance needs a run conditioned through an embedding (this run has no such "
                          "conditions); leave it at 1")
    if conditions.dropout <= 0:
        raise ConfigError("--guidance needs a run trained with condition dropout (this one had "
                          "train.condition_dropout=0, so it has no unconditional model to guide with); leave it "
                          "at 1 or retrain with --set train.condition_dropout=0.1")
    if has_text:
        raise ConfigError("--guidance is not available for text-conditioned runs yet; leave it at 1")
