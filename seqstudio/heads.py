"""Output heads built from a FeatureSpec: the one seam that lets every backend run on every domain.

A backend produces a hidden vector per step and asks ``build_head(spec, hidden_size)`` for the layer that
turns it into distribution parameters. The head knows, part by part, how to score a target (log-likelihood),
draw a sample, report reconstruction accuracy and give a differentiable relaxation (for adversarial training).
No backend ever needs to know which domain produced the data.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import PluginError
from .spec import Binary, Categorical, FeatureSpec


class _PartHead:
    """Distribution logic for one part; holds no weights (the shared Linear lives in OutputHead)."""

    def __init__(self, part):
        self.part = part

    n_params: int


class _BernoulliPart(_PartHead):
    @property
    def n_params(self) -> int:
        return self.part.size

    def log_prob(self, logits, target):
        return -F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1)

    def sample(self, logits, temperature, generator):
        probs = torch.sigmoid(logits / max(temperature, 1e-4))
        return torch.bernoulli(probs, generator=generator)

    def mode(self, logits):
        return (logits > 0).to(logits.dtype)

    def relaxed(self, logits, temperature, hard=False, noise=False):
        # Binary concrete (Maddison et al. 2017): logistic noise makes the relaxation a sample; thresholding it
        # at 0.5 is then exactly a Bernoulli(sigmoid(logits)) draw whatever the temperature.
        if noise:
            u = torch.rand_like(logits, dtype=torch.float32).clamp(1e-6, 1 - 1e-6)
            logits = logits + (torch.log(u) - torch.log1p(-u))
        soft = torch.sigmoid(logits / max(temperature, 1e-4))
        if not hard:
            return soft
        return (soft > 0.5).to(soft.dtype) + (soft - soft.detach())  # straight-through: exact 0/1 forward, soft grad

    def accuracy_stats(self, logits, target, mask):
        # Frame-level accuracy of Bay et al. (2009): TP / (TP + FP + FN); all-silent frames do not inflate it.
        predicted = logits > 0
        actual = target > 0.5
        m = mask.unsqueeze(-1)
        tp = (predicted & actual & m).sum()
        wrong = ((predicted ^ actual) & m).sum()
        return tp, tp + wrong


class _CategoricalPart(_PartHead):
    @property
    def n_params(self) -> int:
        return self.part.size

    def log_prob(self, logits, target):
        index = target[..., 0].long()
        flat = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), index.reshape(-1), reduction="none")
        return -flat.reshape(index.shape)

    def sample(self, logits, temperature, generator):
        probs = torch.softmax(logits.float() / max(temperature, 1e-4), dim=-1)
        flat = probs.reshape(-1, probs.shape[-1])
        index = torch.multinomial(flat, 1, generator=generator).reshape(*probs.shape[:-1], 1)
        return index.to(logits.dtype)

    def mode(self, logits):
        return logits.argmax(-1, keepdim=True).to(logits.dtype)

    def relaxed(self, logits, temperature, hard=False, noise=False):
        if noise:  # Gumbel-softmax (Jang et al. 2017); its argmax is exactly a categorical draw
            u = torch.rand_like(logits, dtype=torch.float32).clamp(1e-6, 1 - 1e-6)
            logits = logits - torch.log(-torch.log(u))
        soft = torch.softmax(logits / max(temperature, 1e-4), dim=-1)
        if not hard:
            return soft
        index = soft.argmax(-1, keepdim=True)
        return torch.zeros_like(soft).scatter_(-1, index, 1.0) + (soft - soft.detach())

    def accuracy_stats(self, logits, target, mask):
        correct = (logits.argmax(-1) == target[..., 0].long()) & mask
        return correct.sum(), mask.sum()


_PART_HEADS = {Binary: _BernoulliPart, Categorical: _CategoricalPart}


class OutputHead(nn.Module):
    """A linear layer to all parts' parameters, plus per-part likelihood, sampling and relaxation."""

    def __init__(self, spec: FeatureSpec, in_features: int):
        super().__init__()
        self.spec = spec
        self.parts = []
        for part in spec.parts:
            if type(part) not in _PART_HEADS:
                raise PluginError(f"no output head for {type(part).__name__} parts yet "
                                  f"(supported: {', '.join(t.__name__ for t in _PART_HEADS)})")
            self.parts.append(_PART_HEADS[type(part)](part))
        self.param_sizes = [p.n_params for p in self.parts]
        self.proj = nn.Linear(in_features, sum(self.param_sizes))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.proj(hidden)

    @torch.no_grad()
    def init_bias_from_data(self, x: torch.Tensor, mask: torch.Tensor) -> None:
        """Start every output at the training data's marginal distribution.

        From a zero bias a sparse piano-roll (about 5% of keys on) costs ~120 nats per step, and Adam moves a
        bias by about ``lr`` per update: thousands of steps spent learning "most keys are off". Starting at the
        marginals, the first updates already learn structure.
        """
        offset = 0
        for part, (_, cols), size in zip(self.parts, self.spec.storage_slices(), self.param_sizes):
            values = x[..., cols][mask].float()
            if values.numel():
                if isinstance(part, _BernoulliPart):
                    p = values.mean(0).clamp(1e-4, 1 - 1e-4)
                    self.proj.bias[offset : offset + size] = torch.log(p) - torch.log1p(-p)
                elif isinstance(part, _CategoricalPart):
                    counts = torch.bincount(values[:, 0].long().clamp(0, size - 1), minlength=size).float() + 1.0
                    self.proj.bias[offset : offset + size] = torch.log(counts / counts.sum())
            offset += size

    def _split(self, params, x=None):
        chunks = params.float().split(self.param_sizes, dim=-1)
        if x is None:
            return list(zip(self.parts, chunks))
        targets = [x[..., cols] for _, cols in self.spec.storage_slices()]
        return list(zip(self.parts, chunks, targets))

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Log-likelihood of storage-layout targets ``x``, summed over parts: shape ``params.shape[:-1]``."""
        return sum(part.log_prob(p, t.float()) for part, p, t in self._split(params, x))

    def sample(self, params, temperature: float = 1.0, generator: torch.Generator | None = None):
        """Draw storage-layout values; ``temperature`` -> 0 approaches the most likely value."""
        if temperature <= 0:
            return self.mode(params)
        return torch.cat([part.sample(p, temperature, generator) for part, p in self._split(params)], dim=-1)

    def mode(self, params):
        return torch.cat([part.mode(p) for part, p in self._split(params)], dim=-1)

    def relaxed(self, params, temperature: float = 1.0, hard: bool = False, noise: bool = False):
        """Differentiable feature-layout output (sigmoid / softmax) so a critic's gradient reaches the model.

        ``noise``: add logistic / Gumbel noise, making the output a relaxed *sample* (Gumbel-softmax, binary
        concrete). ``hard``: straight-through — the forward value is the discrete one-hot / 0-1 value, exactly
        like real data in feature layout, while the gradient is the soft relaxation's.
        """
        return torch.cat([part.relaxed(p, temperature, hard=hard, noise=noise) for part, p in self._split(params)],
                         dim=-1)

    def accuracy_stats(self, params, x, mask):
        """``(correct, total)`` summed over all parts, as tensors (no host sync)."""
        num = params.new_zeros(())
        den = params.new_zeros(())
        for part, p, t in self._split(params, x):
            a, b = part.accuracy_stats(p, t.float(), mask)
            num = num + a
            den = den + b
        return num, den


def build_head(spec: FeatureSpec, hidden_size: int) -> OutputHead:
    """The output layer, likelihood and sampler matching ``spec``."""
    return OutputHead(spec, hidden_size)
