"""What every latent-variable backend shares: the ELBO's KL terms, its annealing, free bits and its report.

The seq-VAE (one latent per sequence) and the VRNN (one per step) are trained on the same objective,

    loss = (NLL + kl_weight(step) * sum(max(KL, free_nats))) / steps

with the KL weight rising linearly from 0 to ``beta`` over ``kl_warmup_steps`` optimisation steps (Bowman et al.
2016) and free bits (Kingma et al. 2016) keeping the latent from collapsing. Kept here once, so the schedule a
benchmark row names means the same thing in every family. ``LatentBackend`` expects its config to have the
fields ``beta``, ``kl_warmup_steps`` and ``free_nats``.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from .base import Backend

LOG_2PI = math.log(2 * math.pi)


def kl_weight(step: int | None, beta: float, warmup_steps: int) -> float:
    """The KL weight at optimisation ``step``: linear warm-up to ``beta``; ``beta`` outside training (``None``)."""
    if warmup_steps <= 0 or step is None:
        return beta
    return beta * min(1.0, step / warmup_steps)


def gaussian_kl(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(N(mu_q, exp(logvar_q)) || N(mu_p, exp(logvar_p))), summed over the last dimension."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0).sum(-1)


def standard_normal_kl(mu, logvar) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over the last dimension (the closed form, cheaper than the above)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def gaussian_log_prob(z, mu, logvar) -> torch.Tensor:
    """log N(z; mu, exp(logvar)), summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


def penalised_kl(kl: torch.Tensor, free_nats: float, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The KL the loss pays: each term below ``free_nats`` counts as ``free_nats`` (free bits), then summed
    (weighted by ``weights``, e.g. the step mask). With no free bits the plain sum: no clamp to compute."""
    if free_nats > 0:
        kl = torch.clamp(kl, min=free_nats)
    return (kl * weights).sum() if weights is not None else kl.sum()


def with_elbo(summary: dict[str, float]) -> dict[str, float]:
    """Add ``elbo`` = -(nll + kl) per step to a summary (``kl`` absent = 0: the bound of a latent-free model is its
    exact log-likelihood, reported under the same name so benchmark rows compare)."""
    summary["elbo"] = -(summary["nll"] + summary.get("kl", 0.0))
    return summary


def importance_weighted_stats(log_weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """From ``[K, B]`` importance log-weights: ``iwae``, the K-sample bound (Burda et al. 2016), and ``elbo_k``, the
    ELBO averaged over the same K draws, each summed over the B sequences."""
    k = log_weights.shape[0]
    return {"iwae": (torch.logsumexp(log_weights, dim=0) - math.log(k)).sum(), "elbo_k": log_weights.mean(0).sum()}


class LatentBackend(Backend):
    """A backend trained on the ELBO: its KL schedule and an ``elbo`` figure in every summary."""

    def kl_weight(self, step: int | None) -> float:
        return kl_weight(step, self.config.beta, self.config.kl_warmup_steps)

    def elbo_loss(self, nll: torch.Tensor, kl: torch.Tensor, steps: torch.Tensor, step: int | None,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
        """The annealed, free-bits objective per step from the summed NLL and the per-term ``kl``."""
        penalised = penalised_kl(kl, self.config.free_nats, weights)
        return (nll + self.kl_weight(step) * penalised) / steps.clamp(min=1)

    def summarize(self, stats):
        return with_elbo(super().summarize(stats))


class ImportanceWeighted(Backend):
    """``evaluate --iw-samples K``: the importance-weighted bound (Burda et al. 2016) from ``log_weights``.

    For the VRNN it tightens towards log p(x) as K grows; a latent-free model gives its exact log-likelihood as
    every log-weight, so the same figure exists (and is exact) for the baseline row.
    """

    evaluate_options = ("iw_samples",)

    @torch.no_grad()
    def log_weights(self, x: torch.Tensor, mask: torch.Tensor, k: int, condition=None, text=None) -> torch.Tensor:
        """``[k, B]`` importance log-weights log p(x, z) - log q(z | x), one per posterior trajectory
        (``condition``: the batch's attribute indices, for a conditional run; ``text``: its ``[B, U]`` symbol
        ids, for a text-conditioned run)."""
        raise NotImplementedError

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
            stats.update(importance_weighted_stats(self.log_weights(batch["x"], batch["mask"], k,
                                                                    batch.get("condition"), batch.get("text"))))
        return stats
