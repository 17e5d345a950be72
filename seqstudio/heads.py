"""Output heads built from a FeatureSpec: the one seam that lets every backend run on every domain.

A backend produces a hidden vector per step and asks ``build_head(spec, hidden_size)`` for the layer that
turns it into distribution parameters. The head knows, part by part, how to score a target (log-likelihood),
draw a sample, report reconstruction accuracy and give a differentiable relaxation (for adversarial training).
No backend ever needs to know which domain produced the data.

Each spec part type has one ``PartHead`` class, registered in ``PART_HEADS`` with ``@part_head(PartType)``, that
carries everything about that part: its parameter count, likelihood, sampling (``temperature``, ``generator``
and ``bias`` for every type alike; a type that has no use for one ignores it), mode, relaxation, accuracy and its
start from the data's marginals. ``OutputHead`` only splits the parameters and asks each part, so a new part type
is one class here (plus its ``spec`` part), not a branch in every method.

A part type may have more than one head, chosen by the run's ``heads:`` section (``HeadsConfig``): a Binary part
is factorized Bernoulli by default, or a NADE (``--set heads.binary=nade``): keys predicted one after another,
each given the keys below it, so a model can say "if C and E, then G". The options reach ``build_head``
through ``head_options`` (a context the run sets around building its backend), so no backend's signature or
config knows about them and every backend, third-party ones included, gets every head.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .errors import ConfigError, PluginError
from .nade_head import NADEPart
from .part_heads import (BINARY_HEADS, PART_HEADS, BernoulliPart, CategoricalPart, HeadsConfig, MixturePart,
                         PartHead, current_head_options, head_options, part_head, truncate_binary, truncate_logits)
from .spec import Binary, FeatureSpec

# the part heads' names stay importable from here, where backends, tests and plugins take them
__all__ = ["build_head", "head_class", "OutputHead", "NADEPart", "BINARY_HEADS", "PART_HEADS", "BernoulliPart",
           "CategoricalPart", "HeadsConfig", "MixturePart", "PartHead", "current_head_options", "head_options",
           "part_head", "truncate_binary", "truncate_logits"]


def head_class(part, options: HeadsConfig) -> type[PartHead]:
    """The ``PartHead`` class of ``part`` under ``options``: the registered one, or the NADE for Binary parts."""
    if type(part) is Binary and options.binary == "nade":
        return NADEPart
    if type(part) not in PART_HEADS:
        raise PluginError(f"no output head for {type(part).__name__} parts "
                          f"(supported: {', '.join(t.__name__ for t in PART_HEADS)})")
    return PART_HEADS[type(part)]


class OutputHead(nn.Module):
    """A linear layer to all parts' parameters, plus per-part likelihood, sampling and relaxation.

    A part head with weights of its own (the NADE's) is an ``nn.Module``, registered in ``part_modules``; the
    default heads have none, so their checkpoints hold only ``proj``.
    """

    def __init__(self, spec: FeatureSpec, in_features: int, mixtures: int = 20, options: HeadsConfig | None = None):
        super().__init__()
        if mixtures < 1:
            raise ConfigError(f"backend.mixtures must be >= 1, got {mixtures}")
        options = options or current_head_options()
        self.spec = spec
        self.parts = [head_class(part, options).build(part, mixtures, options) for part in spec.parts]
        self.part_modules = nn.ModuleList([p for p in self.parts if isinstance(p, nn.Module)])
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
                part.init_bias(self.proj.bias[offset : offset + size], values)
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

    def part_log_probs(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Log-likelihood of storage-layout targets ``x`` part by part: ``[*params.shape[:-1], len(spec.parts)]``
        (an infilling model scores only the masked (step, part) positions)."""
        return torch.stack([part.log_prob(p, t.float()) for part, p, t in self._split(params, x)], dim=-1)

    def sample(self, params, temperature: float = 1.0, generator: torch.Generator | None = None,
               bias: float = 0.0, top_k: int = 0, top_p: float = 1.0):
        """Draw storage-layout values; ``temperature`` -> 0 approaches the most likely value. ``bias``: Graves'
        sampling bias (mixture parts use it; Bernoulli and categorical parts have none). ``top_k`` / ``top_p``:
        top-k and nucleus truncation of categorical values and of each binary key (NADE or factorized)."""
        if temperature <= 0:
            return self.mode(params)
        return torch.cat([part.sample(p, temperature, generator, bias, *((top_k, top_p) if part.truncates else ()))
                          for part, p in self._split(params)], dim=-1)

    def mode(self, params):
        return torch.cat([part.mode(p) for part, p in self._split(params)], dim=-1)

    def guided_sample(self, conditional, unconditional, scale: float, temperature: float = 1.0,
                      generator: torch.Generator | None = None, bias: float = 0.0, top_k: int = 0,
                      top_p: float = 1.0):
        """Classifier-free guidance (``seqstudio.guidance``): draw from the conditional and the unconditional
        rows' parameters mixed with ``scale``, part by part as each part's ``guide`` / ``guided_sample`` says;
        the other options as ``sample``'s."""
        return torch.cat([part.guided_sample(c, u, scale, temperature, generator, bias,
                                             *((top_k, top_p) if part.truncates else ()))
                          for (part, c), (_, u) in zip(self._split(conditional), self._split(unconditional))],
                         dim=-1)

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


def build_head(spec: FeatureSpec, hidden_size: int, mixtures: int = 20,
               options: HeadsConfig | None = None) -> OutputHead:
    """The output layer, likelihood and sampler matching ``spec`` (``mixtures``: components per Real part;
    ``options``: the head choices, by default those of the enclosing ``head_options`` block)."""
    return OutputHead(spec, hidden_size, mixtures, options)
