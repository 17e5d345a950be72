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
from .base import Backend, SamplingOptions


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


class SeqVAE(Backend):
    name = "seqvae"
    description = "sequence VAE (MusicVAE): BiLSTM encoder, latent z, LSTM decoder; interpolation in z"
    Config = SeqVAEConfig
    can_interpolate = True

    def __init__(self, spec, config: SeqVAEConfig):
        super().__init__(spec, config)
        c = config
        width = spec.feature_width
        self.encoder = nn.LSTM(width, c.encoder_size, batch_first=True, bidirectional=True)
        self.to_posterior = nn.Linear(2 * c.encoder_size, 2 * c.latent_size)
        self.to_initial_state = nn.Linear(c.latent_size, 2 * c.decoder_layers * c.decoder_size)
        self.decoder = nn.LSTM(width + c.latent_size, c.decoder_size, num_layers=c.decoder_layers,
                               batch_first=True, dropout=c.dropout if c.decoder_layers > 1 else 0.0)
        self.dropout = nn.Dropout(c.dropout)
        self.head = build_head(spec, c.decoder_size, c.mixtures)

    # -- pieces -------------------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Storage-layout ``x`` -> posterior mean and log-variance."""
        features = self.spec.to_features(x)
        packed = pack_padded_sequence(features, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h, _) = self.encoder(packed)
        mu, logvar = self.to_posterior(torch.cat([h[0], h[1]], dim=-1)).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    def _initial_state(self, z):
        c = self.config
        state = torch.tanh(self.to_initial_state(z)).view(z.shape[0], 2, c.decoder_layers, c.decoder_size)
        h, cell = state.permute(1, 2, 0, 3).contiguous()
        return h, cell

    def _decoder_inputs(self, x, z):
        features = self.spec.to_features(x)
        shifted = torch.cat([torch.zeros_like(features[:, :1]), features[:, :-1]], dim=1)
        return torch.cat([shifted, z.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1)

    def decode_teacher_forced(self, x, z):
        out, _ = self.decoder(self._decoder_inputs(x, z), self._initial_state(z))
        return self.head(self.dropout(out))

    # -- training -----------------------------------------------------------------------------------------------
    def kl_weight(self, step: int | None) -> float:
        c = self.config
        if c.kl_warmup_steps <= 0 or step is None:
            return c.beta
        return c.beta * min(1.0, step / c.kl_warmup_steps)

    def loss(self, batch, step=None):
        x, mask, lengths = batch["x"], batch["mask"], batch["lengths"]
        mu, logvar = self.encode(x, lengths)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        params = self.decode_teacher_forced(x, z)
        nll = -(self.head.log_prob(params, x) * mask).sum()
        kl_per_seq = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
        kl = kl_per_seq.sum()
        penalised = torch.clamp(kl_per_seq, min=self.config.free_nats).sum()
        steps = mask.sum()
        loss = (nll + self.kl_weight(step) * penalised) / steps.clamp(min=1)
        acc_num, acc_den = self.head.accuracy_stats(params, x, mask)
        stats = {"nll": nll.detach(), "kl": kl.detach(), "steps": steps.detach().float(),
                 "sequences": torch.tensor(float(x.shape[0]), device=x.device),
                 "accuracy_num": acc_num.detach().float(), "accuracy_den": acc_den.detach().float()}
        return loss, stats

    def summarize(self, stats):
        out = super().summarize(stats)
        out["elbo"] = -(out["nll"] + out["kl"])
        return out

    # -- generation ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, z: torch.Tensor, options: SamplingOptions, prime: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Autoregressively decode latents ``z`` into ``options.length`` steps (storage layout), after an optional
        prime."""
        state = self._initial_state(z)
        n = z.shape[0]
        z_step = z.unsqueeze(1)
        previous = torch.zeros(n, 1, self.spec.feature_width, device=z.device)
        outputs = []
        if prime is not None:
            # Run the prime through the decoder teacher-forced, keep it verbatim in the output.
            inputs = self._decoder_inputs(prime, z)
            _, state = self.decoder(inputs, state)
            previous = self.spec.to_features(prime[:, -1:])
            outputs.append(prime)
        for _ in range(options.length):
            out, state = self.decoder(torch.cat([previous, z_step], dim=-1), state)
            x_t = self.head.sample(self.head(out), options.temperature, generator, options.bias)
            outputs.append(x_t)
            previous = self.spec.to_features(x_t)
        return torch.cat(outputs, dim=1)

    @torch.no_grad()
    def sample(self, n, options=SamplingOptions(), generator=None):
        device = self.device
        prime = options.prime
        if prime is not None:
            prime = prime.to(device)
            lengths = torch.full((prime.shape[0],), prime.shape[1], dtype=torch.long)
            mu, _ = self.encode(prime, lengths)
            z = mu.expand(n, -1) if mu.shape[0] == 1 else mu
            prime = prime.expand(n, -1, -1) if prime.shape[0] == 1 else prime
        else:
            z = torch.randn(n, self.config.latent_size, generator=generator, device=device)
        return self.decode(z, options, prime=prime, generator=generator)

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

