"""Variational RNN (Chung et al. 2015), with its VRNN-I and plain-RNN ablations as config switches.

Per step t, with h_{t-1} the LSTM state before x_t:

    prior       p(z_t | h_{t-1})                     = N(mu_p, sigma_p)   (``prior: independent``: N(0, I))
    posterior   q(z_t | phi_x(x_t), h_{t-1})         = N(mu_q, sigma_q)
    generation  p(x_t | phi_z(z_t), h_{t-1})         through the FeatureSpec's output heads
    recurrence  h_t = LSTM([phi_x(x_t), phi_z(z_t)], h_{t-1})

and the loss is sum_t KL(q || p) - log p(x_t | ...). ``latent: false`` drops z entirely: p(x_t | h_{t-1}) with
h_t = LSTM(phi_x(x_t), h_{t-1}), the RNN baseline of the same size (run as one cuDNN/oneDNN ``nn.LSTM`` call).

Why the code is shaped the way it is (speed): only what truly needs h_{t-1} runs in the step loop — the
h-dependent half of the posterior's first layer, the posterior's remaining layers, the reparameterised sample,
phi_z and the LSTM cell update. Everything that depends on x alone (phi_x, its projections into the posterior
and the LSTM gates, as one matmul) runs over the whole sequence before the loop, and everything that depends
only on (h_{t-1}, z_t) — the prior, the decoder, the heads' log-likelihood, the KL — runs after it on stacked
tensors. The loop itself is one autograd node with a hand-written backward (``vrnn_loop.py``): untaped
forward, and weight gradients formed after the reverse loop as one large matmul each, as cuDNN does for its
LSTM. Nothing in the loop reads a value back to the host.

Evaluation reports the ELBO per step and, with ``iw_samples=K``, the importance-weighted bound (Burda et al.
2016) with the filtering posterior as proposal: log (1/K) sum_k p(x, z^k) / q(z^k | x), a lower bound on
log p(x) that tightens as K grows — the figure to compare with published log-likelihoods.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..heads import build_head
from .base import Backend, SamplingOptions
from .vrnn_loop import MIN_STD, fused_filter

LOG_2PI = math.log(2 * math.pi)


@dataclasses.dataclass
class VRNNConfig:
    hidden_size: int = 256  # LSTM state
    latent_size: int = 32  # z_t
    phi_size: int = 256  # width of every feature extractor / prior / posterior / decoder layer
    phi_layers: int = 1  # hidden layers in each of those MLPs
    prior: str = "conditional"  # conditional: p(z_t | h_{t-1}) (VRNN) | independent: N(0, I) (VRNN-I)
    latent: bool = True  # false: the plain RNN baseline (no z), same LSTM and feature extractor sizes
    dropout: float = 0.0  # on phi_x outputs and on the decoder's input
    beta: float = 1.0  # final KL weight
    kl_warmup_steps: int = 0  # KL weight rises linearly from 0 to beta over this many optimisation steps
    free_nats: float = 0.0  # per-step KL below this is not penalised (free bits, in nats per time step)
    iw_chunk: int = 1024  # sequences (copies x batch) processed at once by the importance-weighted bound
    mixtures: int = 20  # Gaussian-mixture components for real-valued parts (e.g. pen offsets)

    def __post_init__(self):
        if self.prior not in ("conditional", "independent"):
            raise ConfigError(f"backend.prior must be 'conditional' or 'independent', got {self.prior!r}")
        for name in ("hidden_size", "latent_size", "phi_size", "phi_layers", "iw_chunk"):
            if getattr(self, name) < 1:
                raise ConfigError(f"backend.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"backend.dropout must be in [0, 1), got {self.dropout}")


def mlp(in_features: int, width: int, layers: int) -> nn.Sequential:
    """``layers`` x (Linear, ReLU), ``in_features`` -> ``width``."""
    mods = []
    for i in range(layers):
        mods += [nn.Linear(in_features if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*mods)


def gaussian_kl(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(N(mu_q, exp(logvar_q)) || N(mu_p, exp(logvar_p))), summed over the last dimension."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0).sum(-1)


def gaussian_log_prob(z, mu, logvar) -> torch.Tensor:
    """log N(z; mu, exp(logvar)), summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


def _stats(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Network output -> (mean, log-variance), with a softplus standard deviation (smooth, bounded below)."""
    mu, s = raw.chunk(2, dim=-1)
    std = F.softplus(s) + MIN_STD
    return mu, 2.0 * torch.log(std)


class VRNN(Backend):
    name = "vrnn"
    description = "variational RNN (Chung et al. 2015): per-step latent with conditional prior; ELBO + IWAE"
    Config = VRNNConfig
    evaluate_options = ("iw_samples",)

    def __init__(self, spec, config: VRNNConfig):
        super().__init__(spec, config)
        c = config
        H, P, L = c.hidden_size, c.phi_size, c.latent_size
        self.phi_x = mlp(spec.feature_width, P, c.phi_layers)
        self.dropout = nn.Dropout(c.dropout)
        if not c.latent:
            self.rnn = nn.LSTM(P, H, batch_first=True)
            self.decoder = mlp(H, P, c.phi_layers)
        else:
            self.phi_z = mlp(L, P, c.phi_layers)
            # Posterior's first layer on [phi_x(x_t), h_{t-1}], split so the x half runs before the loop.
            self.post_x = nn.Linear(P, P)
            self.post_rest = nn.Sequential(nn.ReLU(), mlp(P, P, c.phi_layers - 1), nn.Linear(P, 2 * L))
            # LSTM gates = W_x phi_x(x_t) + W_z phi_z(z_t) + W_h h_{t-1} + b, the x part precomputed.
            self.gates_x = nn.Linear(P, 4 * H)
            self.gates_z = nn.Linear(P, 4 * H, bias=False)
            # Everything applied to h_{t-1} inside the loop, as one matmul: [posterior part | gate part].
            self.from_h = nn.Linear(H, P + 4 * H, bias=False)
            if c.prior == "conditional":
                self.prior_net = nn.Sequential(mlp(H, P, c.phi_layers), nn.Linear(P, 2 * L))
            self.decoder = mlp(P + H, P, c.phi_layers)
            with torch.no_grad():  # forget-gate bias 1: the usual LSTM initialisation
                self.gates_x.bias.zero_()
                self.gates_x.bias[H : 2 * H].fill_(1.0)
        self.head = build_head(spec, P, c.mixtures)

    # -- pieces -------------------------------------------------------------------------------------------------------
    def _cell(self, gates: torch.Tensor, c_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        H = self.config.hidden_size
        ifo, g = gates.split([3 * H, H], dim=-1)  # split, not slicing: its backward is one cat, not zero-fills
        i, f, o = torch.sigmoid(ifo).chunk(3, dim=-1)
        g = torch.tanh(g)
        c = f * c_prev + i * g
        return o * torch.tanh(c), c

    def _prior(self, h_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        L = self.config.latent_size
        if self.config.prior == "independent":
            zeros = h_prev.new_zeros(*h_prev.shape[:-1], L)
            return zeros, zeros
        return _stats(self.prior_net(h_prev))

    def filter(self, x: torch.Tensor, eps: torch.Tensor | None = None, state=None):
        """Run the posterior and recurrence over storage-layout ``x`` [B, T, D] (the fused loop of vrnn_loop).

        ``eps`` [T, B, L]: the standard-normal draws (drawn here when not given). Returns stacked per-step
        tensors (time on dim 1): ``h_prev`` (h_{t-1}), ``pz`` (phi_z(z_t)), ``z``, ``mu_q``, ``logvar_q``,
        ``eps``, and the final ``(h, c)`` state.
        """
        c = self.config
        B, T, H = x.shape[0], x.shape[1], c.hidden_size
        # Time-major from the start: the loop reads one contiguous [B, .] slice per step.
        px = self.dropout(self.phi_x(self.spec.to_features(x).transpose(0, 1)))
        # [qx | gx] from one matmul: the x-dependent parts of the posterior's first layer and of the LSTM gates.
        x_proj = F.linear(px, torch.cat([self.post_x.weight, self.gates_x.weight]),
                          torch.cat([self.post_x.bias, self.gates_x.bias]))
        if eps is None:
            eps = torch.randn(T, B, c.latent_size, device=x.device, dtype=px.dtype)
        if state is None:
            h = x.new_zeros(B, H, dtype=px.dtype)
            cell = x.new_zeros(B, H, dtype=px.dtype)
        else:
            h, cell = state
        h_prev, pz, z, mu, logvar, h, cell = fused_filter(
            x_proj, eps, h, cell, self.from_h.weight, self.gates_z.weight, self._post_hidden, self.post_rest[2],
            [m for m in self.phi_z if isinstance(m, nn.Linear)])
        batch_first = lambda t: t.transpose(0, 1)  # noqa: E731
        return {"h_prev": batch_first(h_prev), "pz": batch_first(pz), "z": batch_first(z),
                "mu_q": batch_first(mu), "logvar_q": batch_first(logvar), "eps": batch_first(eps),
                "state": (h, cell)}

    @property
    def _post_hidden(self) -> list[nn.Linear]:
        return [m for m in self.post_rest[1] if isinstance(m, nn.Linear)]

    def _decode_params(self, pz, h_prev):
        return self.head(self.dropout(self.decoder(torch.cat([pz, h_prev], dim=-1))))

    def _rnn_params(self, x):
        """Plain RNN: head parameters for p(x_t | h_{t-1}) at every step, from one nn.LSTM call."""
        px = self.dropout(self.phi_x(self.spec.to_features(x)))
        out, _ = self.rnn(px[:, :-1])
        h_prev = torch.cat([out.new_zeros(x.shape[0], 1, out.shape[-1]), out], dim=1)
        return self.head(self.dropout(self.decoder(h_prev)))

    # -- training -----------------------------------------------------------------------------------------------------
    def kl_weight(self, step: int | None) -> float:
        c = self.config
        if c.kl_warmup_steps <= 0 or step is None:
            return c.beta
        return c.beta * min(1.0, step / c.kl_warmup_steps)

    def _terms(self, x, mask, eps=None):
        """Per-step log p(x_t | .), KL and the IWAE log-weight terms (all [B, T]), plus head parameters."""
        if not self.config.latent:
            params = self._rnn_params(x)
            ll = self.head.log_prob(params, x)
            return ll, torch.zeros_like(ll), None, params
        out = self.filter(x, eps)
        params = self._decode_params(out["pz"], out["h_prev"])
        ll = self.head.log_prob(params, x)
        mu_p, logvar_p = self._prior(out["h_prev"])
        kl = gaussian_kl(out["mu_q"].float(), out["logvar_q"].float(), mu_p.float(), logvar_p.float())
        return ll, kl, (out, mu_p, logvar_p), params

    def loss(self, batch, step=None):
        x, mask = batch["x"], batch["mask"]
        ll, kl, _, params = self._terms(x, mask)
        m = mask.to(ll.dtype)
        nll = -(ll * m).sum()
        kl_sum = (kl * m).sum()
        penalised = (torch.clamp(kl, min=self.config.free_nats) * m).sum() if self.config.free_nats > 0 else kl_sum
        steps = mask.sum()
        loss = (nll + self.kl_weight(step) * penalised) / steps.clamp(min=1)
        acc_num, acc_den = self.head.accuracy_stats(params, x, mask)
        stats = {"nll": nll.detach(), "kl": kl_sum.detach(), "steps": steps.detach().float(),
                 "sequences": torch.tensor(float(x.shape[0]), device=x.device),
                 "accuracy_num": acc_num.detach().float(), "accuracy_den": acc_den.detach().float()}
        return loss, stats

    # -- evaluation ---------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def log_weights(self, x: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
        """``[k, B]`` importance log-weights log p(x, z) - log q(z | x), one per posterior trajectory."""
        B = x.shape[0]
        if not self.config.latent:  # no latent: the "bound" is the exact log-likelihood
            ll = (self.head.log_prob(self._rnn_params(x), x) * mask).sum(-1)
            return ll.unsqueeze(0).expand(k, B)
        rows = max(1, self.config.iw_chunk // B)
        out = []
        for start in range(0, k, rows):
            n = min(rows, k - start)
            xr = x.repeat(n, 1, 1)
            mr = mask.repeat(n, 1).to(torch.float32)
            ll, _, (o, mu_p, logvar_p), _ = self._terms(xr, mr)
            log_p_z = gaussian_log_prob(o["z"].float(), mu_p.float(), logvar_p.float())
            log_q_z = -0.5 * (LOG_2PI + o["logvar_q"].float() + o["eps"].float().pow(2)).sum(-1)
            w = ((ll + log_p_z - log_q_z) * mr).sum(-1)
            out.append(w.view(n, B))
        return torch.cat(out, dim=0)

    @torch.no_grad()
    def evaluate_batch(self, batch, iw_samples: int | None = None, **options):
        """Loss statistics; with ``iw_samples=K`` also ``iwae`` (sum over sequences of the K-sample bound)
        and ``elbo_k`` (the ELBO averaged over the same K trajectories)."""
        self.check_evaluate_options(options)
        stats = self.loss(batch)[1]
        if iw_samples is not None:
            k = int(iw_samples)
            if k < 1:
                raise ConfigError(f"iw_samples must be >= 1, got {k}")
            w = self.log_weights(batch["x"], batch["mask"], k)
            stats["iwae"] = (torch.logsumexp(w, dim=0) - math.log(k)).sum()
            stats["elbo_k"] = w.mean(0).sum()
        return stats

    def summarize(self, stats):
        out = super().summarize(stats)
        out["elbo"] = -(out["nll"] + out["kl"])
        return out

    # -- generation ---------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n, options=SamplingOptions(), generator=None):
        """``n`` sequences of ``steps`` new steps; with ``prime`` [1 or n, T0, D] the output is the prime
        (unchanged) followed by ``steps`` generated steps: the prime is run through the posterior and the
        recurrence, and the model continues from the state it leaves."""
        device = self.device
        c = self.config
        H = c.hidden_size
        prime, temperature = options.prime, options.temperature
        h = torch.zeros(n, H, device=device)
        cell = torch.zeros(n, H, device=device)
        outputs = []
        if prime is not None:
            prime = prime.to(device)
            prime = prime.expand(n, -1, -1) if prime.shape[0] == 1 else prime
            if c.latent:
                eps = torch.randn(prime.shape[1], n, c.latent_size, device=device, generator=generator)
                h, cell = self.filter(prime, eps)["state"]
            else:
                _, (h1, c1) = self.rnn(self.phi_x(self.spec.to_features(prime)))
                h, cell = h1[0], c1[0]
            outputs.append(prime)
        for _ in range(options.length):
            if c.latent:
                mu, logvar = self._prior(h)
                if temperature > 0:
                    noise = torch.randn(mu.shape, device=device, generator=generator)
                    z = mu + noise * torch.exp(0.5 * logvar)
                else:
                    z = mu
                pz = self.phi_z(z)
                x_t = self.head.sample(self._decode_params(pz, h), temperature, generator, options.bias)
                px = self.phi_x(self.spec.to_features(x_t))
                gates = self.gates_x(px) + self.from_h(h)[:, c.phi_size :] + self.gates_z(pz)
                h, cell = self._cell(gates, cell)
            else:
                x_t = self.head.sample(self.head(self.decoder(h)), temperature, generator, options.bias)
                _, (h1, c1) = self.rnn(self.phi_x(self.spec.to_features(x_t)).unsqueeze(1),
                                       (h.unsqueeze(0), cell.unsqueeze(0)))
                h, cell = h1[0], c1[0]
            outputs.append(x_t.unsqueeze(1))
        return torch.cat(outputs, dim=1)
