"""Sequence VAE (MusicVAE, Roberts et al. 2018, without the hierarchical conductor).

Bidirectional LSTM encoder -> q(z | x) = N(mu, sigma); LSTM decoder conditioned on z through its initial
state and at every step, teacher-forced over the whole window in one cuDNN call for training. Only sampling
runs a per-step loop. Posterior collapse is held off with KL annealing (``kl_warmup_steps``) and free nats.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence

from ..heads import build_head
from ..guidance import sampling_noise
from .bidirectional import BidirectionalFinalStates
from .autoregressive import AutoregressiveBackend, LSTMStateFromVector, cat_condition, likelihood_stats, shift_right
from .base import SamplingOptions
from .latent import LatentBackend, standard_normal_kl


@dataclasses.dataclass
class SeqVAEConfig:
    latent_size: int = 64
    encoder_size: int = 256
    decoder_size: int = 256
    decoder_layers: int = 2
    dropout: float = 0.1
    beta: float = 1.0  # final KL weight
    kl_warmup_steps: int = 1000  # KL weight rises linearly from 0 to beta over this many steps
    free_nats: float = 0.0  # KL per sequence below this is not penalised (MusicVAE's free bits, in nats)
    mixtures: int = 20  # Gaussian-mixture components for real-valued parts (e.g. pen offsets)


class SeqVAE(LatentBackend, AutoregressiveBackend):
    name = "seqvae"
    description = "sequence VAE (MusicVAE): BiLSTM encoder, latent z, LSTM decoder; interpolation in z"
    Config = SeqVAEConfig
    can_interpolate = True
    accepts_conditions = True

    def __init__(self, spec, config: SeqVAEConfig, conditions=None):
        super().__init__(spec, config, conditions)
        c = config
        width = spec.feature_width
        E = self.condition_size  # conditions: q(z | x, c) and the decoder's "z" is [z | c] (0 = unconditional)
        self.encoder = nn.LSTM(width, c.encoder_size, batch_first=True, bidirectional=True)
        self._encoder_final = BidirectionalFinalStates(self.encoder)  # CPU: unpacked, 20x faster than packing
        self.to_posterior = nn.Linear(2 * c.encoder_size + E, 2 * c.latent_size)
        self.to_initial_state = LSTMStateFromVector(c.latent_size + E, c.decoder_layers, c.decoder_size)
        self.decoder = nn.LSTM(width + c.latent_size + E, c.decoder_size, num_layers=c.decoder_layers,
                               batch_first=True, dropout=c.dropout if c.decoder_layers > 1 else 0.0)
        self.dropout = nn.Dropout(c.dropout)
        self.head = build_head(spec, c.decoder_size, c.mixtures)

    @classmethod
    def tiny_config(cls):
        return cls.Config(latent_size=8, encoder_size=24, decoder_size=24, decoder_layers=1, mixtures=3)

    # -- pieces -------------------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, lengths: torch.Tensor,
               e: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Storage-layout ``x`` (and the condition embedding ``e``; "unknown" when not given) -> posterior mean and
        log-variance."""
        if e is None:
            e = self.condition_vector(None, x.shape[0])
        features = self.spec.to_features(x)
        if features.is_cuda:
            packed = pack_padded_sequence(features, lengths.cpu(), batch_first=True, enforce_sorted=False)
            _, (h, _) = self.encoder(packed)
        else:
            h = self._encoder_final(self.encoder, features, lengths)
        mu, logvar = self.to_posterior(cat_condition(torch.cat([h[0], h[1]], dim=-1), e)).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    def _decoder_inputs(self, x, z):
        shifted = shift_right(self.spec.to_features(x))
        return torch.cat([shifted, z.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1)

    def decode_teacher_forced(self, x, z):
        out, _ = self.decoder(self._decoder_inputs(x, z), self.to_initial_state(z))
        return self.head(self.dropout(out))

    # -- training -----------------------------------------------------------------------------------------------
    def loss(self, batch, step=None):
        x, mask, lengths = batch["x"], batch["mask"], batch["lengths"]
        e = self.condition_vector(batch.get("condition"), x.shape[0])  # conditions (None: unconditional)
        mu, logvar = self.encode(x, lengths, e)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        params = self.decode_teacher_forced(x, cat_condition(z, e))
        nll = -(self.head.log_prob(params, x) * mask).sum()
        kl_per_seq = standard_normal_kl(mu, logvar)
        loss = self.elbo_loss(nll, kl_per_seq, mask.sum(), step)
        return loss, likelihood_stats(self.head, params, x, mask, nll, kl_per_seq.sum())

    # -- generation ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, z: torch.Tensor, options: SamplingOptions, prime: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Autoregressively decode latents ``z`` into ``options.length`` steps (storage layout), after an optional
        prime (``[n, T0, D]``, kept verbatim); conditioned on ``options.condition``."""
        z = cat_condition(z, self.condition_vector(options.condition, z.shape[0]))
        return self.continue_from(*self._start_from(z, prime), options, generator, prime)

    def _start_from(self, z, prime):
        state = self.to_initial_state(z)
        if prime is None:
            return (state, z), torch.zeros(z.shape[0], self.spec.feature_width, device=z.device)
        _, state = self.decoder(self._decoder_inputs(prime, z), state)  # teacher-forced: all but the last step
        return (state, z), self.spec.to_features(prime[:, -1])

    def start(self, n, prime, options, generator):
        e = self.condition_vector(options.condition, n)
        if prime is not None:
            shared = prime.stride(0) == 0 and (e is None or bool((e == e[:1]).all()))
            rows = prime[:1] if shared else prime  # one prime and one condition for all n: encode it once
            e_rows = e[: rows.shape[0]] if e is not None else None
            z, _ = self.encode(rows, torch.full((rows.shape[0],), prime.shape[1], dtype=torch.long), e_rows)
            z = z.expand(n, -1)
        else:
            z = sampling_noise((n, self.config.latent_size), generator=generator, device=self.device)
        return self._start_from(cat_condition(z, e), prime)

    def step(self, state, pending, options, generator):
        """The decoder's step: one LSTM step on [previous step | z], then the head (z conditions every step)."""
        lstm_state, z = state
        out, lstm_state = self.decoder(torch.cat([pending, z], dim=-1).unsqueeze(1), lstm_state)
        return self.head(self.dropout(out[:, 0])), (lstm_state, z)

    @torch.no_grad()
    def interpolate(self, a, b, points, options=SamplingOptions(), generator=None):
        """Decode ``points`` points on the great circle between the posterior means of ``a`` and ``b``."""
        device = self.device
        mu_a, _ = self.encode(a.unsqueeze(0).to(device), torch.tensor([a.shape[0]]))
        mu_b, _ = self.encode(b.unsqueeze(0).to(device), torch.tensor([b.shape[0]]))
        ts = torch.linspace(0.0, 1.0, points, device=device)
        z = torch.cat([slerp(mu_a, mu_b, float(t)) for t in ts])
        return self.decode(z, options, generator=generator)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation: stays at the typical norm of a Gaussian latent, unlike a straight line."""
    a_n = a / a.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    b_n = b / b.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    if float(so.abs().min()) < 1e-6:
        return (1 - t) * a + t * b
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b

