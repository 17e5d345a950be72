"""The training and evaluation side shared by backends without a latent (``rnn``, ``transformer``): their
teacher-forced pass gives p(x_t | x_<t) at every step, so the loss is the masked negative log-likelihood and
every "importance weight" of ``evaluate --iw-samples`` is the exact log-likelihood of the sequence. One copy, so
a change to how a likelihood backend is scored reaches both."""

from __future__ import annotations

import torch

from .autoregressive import likelihood_stats
from .latent import ImportanceWeighted, with_elbo


class ExactLikelihood(ImportanceWeighted):
    """Mix in before ``AutoregressiveBackend``; needs ``self.teacher_forced(x, condition, text)`` and
    ``self.head``."""

    def loss(self, batch, step=None):
        x, mask = batch["x"], batch["mask"]
        params = self.teacher_forced(x, batch.get("condition"), batch.get("text"))
        ll = self.head.log_prob(params, x)
        nll = -(ll * mask.to(ll.dtype)).sum()
        loss = nll / mask.sum().clamp(min=1)
        return loss, likelihood_stats(self.head, params, x, mask, nll, kl=torch.zeros_like(nll))

    @torch.no_grad()
    def log_weights(self, x, mask, k, condition=None, text=None):
        """No latent: every "importance weight" is the exact log-likelihood of the sequence (given its text)."""
        ll = (self.head.log_prob(self.teacher_forced(x, condition, text), x) * mask).sum(-1)
        return ll.unsqueeze(0).expand(k, -1)

    def summarize(self, stats):
        return with_elbo(super().summarize(stats))
