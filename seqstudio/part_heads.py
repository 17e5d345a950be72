"""The output heads of one spec part each (``PartHead``: Bernoulli, categorical, Gaussian mixture), the run's
head options (``HeadsConfig``, ``head_options``) and the truncation of sampled distributions (top-k, top-p).
``heads`` builds a whole spec's head from them; the NADE head of Binary parts is ``nade_head``."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math

import torch
import torch.nn.functional as F

from .errors import ConfigError
from .guidance import mix
from .spec import Binary, Categorical, Real


BINARY_HEADS = ("factorized", "nade")


@dataclasses.dataclass(frozen=True)
class HeadsConfig:
    """The ``heads:`` section of a run: which head each part type gets (``--set heads.KEY=VALUE``).

    ``binary``: ``factorized`` (independent Bernoulli per column given the state, the default) or ``nade`` (an
    autoregressive NADE over the part's columns, Larochelle & Murray 2011, with the biases from the backend's
    state as in the RNN-NADE of Boulanger-Lewandowski et al. 2012). ``nade_hidden``: the NADE's hidden units.
    """

    binary: str = "factorized"
    nade_hidden: int = 128

    def __post_init__(self):
        if self.binary not in BINARY_HEADS:
            raise ConfigError(f"heads.binary must be one of {', '.join(BINARY_HEADS)}, got {self.binary!r}")
        if self.nade_hidden < 1:
            raise ConfigError(f"heads.nade_hidden must be >= 1, got {self.nade_hidden}")


_HEAD_OPTIONS: contextvars.ContextVar = contextvars.ContextVar("seqstudio_head_options", default=None)


@contextlib.contextmanager
def head_options(options: HeadsConfig | None):
    """Every ``build_head`` inside this block uses ``options`` (the run sets it around building its backend)."""
    token = _HEAD_OPTIONS.set(options)
    try:
        yield
    finally:
        _HEAD_OPTIONS.reset(token)


def current_head_options() -> HeadsConfig:
    return _HEAD_OPTIONS.get() or HeadsConfig()


def truncate_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Categorical logits with the values outside the top ``top_k`` (Fan et al. 2018) and then outside the nucleus
    (the fewest likeliest values holding ``top_p`` of the mass, Holtzman et al. 2020) set to -inf. ``top_k`` 0 and
    ``top_p`` 1 return ``logits`` itself, so the draw is plain sampling's, bit for bit."""
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p < 1.0:
        ordered, order = logits.sort(dim=-1, descending=True)
        probs = torch.softmax(ordered, dim=-1)
        outside = probs.cumsum(-1) - probs >= top_p  # the likelier values before it already hold top_p
        outside[..., 0] = False  # the likeliest value always stays
        logits = logits.masked_fill(torch.zeros_like(outside).scatter(-1, order, outside), -math.inf)
    return logits


def truncate_binary(probs: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Top-k and nucleus truncation of binary keys' "on" probabilities, each key's two values as a categorical:
    ``top_k`` = 1, or a likelier value holding at least ``top_p`` of the mass, makes that value certain (0/1);
    other keys keep their probability. ``top_k`` 0 (or >= 2) and ``top_p`` 1 return ``probs`` itself."""
    if top_k == 1:
        certain = torch.ones_like(probs, dtype=torch.bool)
    elif top_p < 1.0:
        certain = torch.maximum(probs, 1.0 - probs) >= top_p
    else:
        return probs
    return torch.where(certain, (probs > 0.5).to(probs.dtype), probs)


class PartHead:
    """Distribution logic for one part; holds no weights (the shared Linear lives in OutputHead).

    ``params`` below are this part's slice of the head's output, ``target`` its storage-layout columns (float).
    """

    def __init__(self, part, mixtures: int = 1):
        self.part = part

    @classmethod
    def build(cls, part, mixtures: int, options: "HeadsConfig") -> "PartHead":
        """The head of ``part`` under the run's head ``options`` (a head with options of its own overrides)."""
        return cls(part, mixtures)

    @property
    def n_params(self) -> int:
        raise NotImplementedError

    def log_prob(self, params, target):
        """Log-likelihood per step, summed over the part's columns: shape ``params.shape[:-1]``."""
        raise NotImplementedError

    # True when ``sample`` takes ``top_k`` and ``top_p`` (top-k and nucleus truncation, 0 and 1 = off) after
    # ``bias``; other parts (real values, third-party heads written before them) are sampled without them.
    truncates = False

    def sample(self, params, temperature: float, generator, bias: float = 0.0):
        """Storage-layout draws; ``temperature`` > 0 (0 is ``mode``), ``bias``: Graves' sampling bias."""
        raise NotImplementedError

    def mode(self, params):
        raise NotImplementedError

    def guide(self, conditional, unconditional, scale: float):
        """Classifier-free guidance (``seqstudio.guidance``): the parameters to draw from, given the conditional
        and the unconditional row's. Default: every parameter mixed, ``u + scale (c - u)`` (for logits, the
        renormalised product p_c^scale p_u^(1 - scale))."""
        return mix(conditional, unconditional, scale)

    def guided_sample(self, conditional, unconditional, scale: float, temperature: float, generator,
                      bias: float = 0.0, *truncation):
        """A draw from the guided parameters (``temperature`` 0: their mode); a head whose draw is a chain (the
        NADE) overrides this to guide every link."""
        params = self.guide(conditional, unconditional, scale)
        if temperature <= 0:
            return self.mode(params)
        return self.sample(params, temperature, generator, bias, *truncation)

    def relaxed(self, params, temperature, hard=False, noise=False):
        """Differentiable feature-layout output (see ``OutputHead.relaxed``)."""
        raise NotImplementedError

    def accuracy_stats(self, params, target, mask):
        """``(correct, total)`` tensors; ``(0, 0)`` for a part with no notion of correct."""
        raise NotImplementedError

    def init_bias(self, bias, values):
        """Write the bias that makes this part start at the marginal distribution of ``values`` ``[N, width]``
        into ``bias`` (this part's slice of the projection's bias, written in place)."""
        raise NotImplementedError


PART_HEADS: dict[type, type[PartHead]] = {}


def part_head(part_type: type):
    """Register the decorated ``PartHead`` as the head of ``part_type`` parts."""
    def register(cls):
        PART_HEADS[part_type] = cls
        return cls
    return register


@part_head(Binary)
class BernoulliPart(PartHead):
    truncates = True

    @property
    def n_params(self) -> int:
        return self.part.size

    def log_prob(self, logits, target):
        return -F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1)

    def sample(self, logits, temperature, generator, bias=0.0, top_k=0, top_p=1.0):
        probs = truncate_binary(torch.sigmoid(logits / max(temperature, 1e-4)), top_k, top_p)
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

    def init_bias(self, bias, values):
        p = values.mean(0).clamp(1e-4, 1 - 1e-4)
        bias.copy_(torch.log(p) - torch.log1p(-p))


@part_head(Categorical)
class CategoricalPart(PartHead):
    truncates = True

    @property
    def n_params(self) -> int:
        return self.part.size

    def log_prob(self, logits, target):
        index = target[..., 0].long()
        flat = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), index.reshape(-1), reduction="none")
        return -flat.reshape(index.shape)

    def sample(self, logits, temperature, generator, bias=0.0, top_k=0, top_p=1.0):
        probs = torch.softmax(truncate_logits(logits.float() / max(temperature, 1e-4), top_k, top_p), dim=-1)
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

    def init_bias(self, bias, values):
        size = bias.shape[0]
        counts = torch.bincount(values[:, 0].long().clamp(0, size - 1), minlength=size).float() + 1.0
        bias.copy_(torch.log(counts / counts.sum()))  # add-one smoothed class frequencies


@part_head(Real)
class MixturePart(PartHead):
    """A mixture of ``K`` Gaussians over a ``Real(n)`` part (Graves 2013; sketch-rnn; VRNN-GMM).

    For ``n == 2`` (pen offsets) each component is a *bivariate* Gaussian with its own correlation, so a
    component can lie along a slanted stroke; for other ``n`` the components are diagonal. Parameters per
    component: a mixture logit, ``n`` means, ``n`` log standard deviations and (``n == 2``) a correlation
    through ``tanh``.
    """

    LOG_SIGMA_MIN, LOG_SIGMA_MAX = -7.0, 7.0
    RHO_MAX = 0.999  # keeps 1 - rho^2 away from 0, where the density and its gradient blow up

    def __init__(self, part, mixtures: int = 1):
        super().__init__(part)
        self.k = mixtures
        self.n = part.size
        self.bivariate = part.size == 2

    @property
    def n_params(self) -> int:
        return self.k * (1 + 2 * self.n + (1 if self.bivariate else 0))

    def _unpack(self, params, bias: float = 0.0):
        k, n = self.k, self.n
        logits, mu, log_sigma, rest = params.split([k, k * n, k * n, params.shape[-1] - k * (1 + 2 * n)], dim=-1)
        shape = (*params.shape[:-1], k, n)
        log_sigma = log_sigma.reshape(shape).clamp(self.LOG_SIGMA_MIN, self.LOG_SIGMA_MAX) - bias
        rho = torch.tanh(rest) * self.RHO_MAX if self.bivariate else None
        return logits, mu.reshape(shape), log_sigma, rho

    def log_prob(self, params, target):
        logits, mu, log_sigma, rho = self._unpack(params)
        z = (target.unsqueeze(-2) - mu) * torch.exp(-log_sigma)  # [..., K, n] standardised distances
        if self.bivariate:
            one_minus = 1.0 - rho * rho
            quad = (z[..., 0] ** 2 + z[..., 1] ** 2 - 2.0 * rho * z[..., 0] * z[..., 1]) / one_minus
            log_n = -math.log(2 * math.pi) - log_sigma.sum(-1) - 0.5 * torch.log(one_minus) - 0.5 * quad
        else:
            log_n = (-0.5 * math.log(2 * math.pi) - log_sigma - 0.5 * z * z).sum(-1)
        return torch.logsumexp(torch.log_softmax(logits, dim=-1) + log_n, dim=-1)

    def _draw(self, mu, log_sigma, rho, eps):
        """Component values from standard normal ``eps`` ``[..., K, n]`` (reparameterised)."""
        sigma = torch.exp(log_sigma)
        if self.bivariate:
            e0, e1 = eps[..., 0], eps[..., 1]
            second = rho * e0 + torch.sqrt(1.0 - rho * rho) * e1
            return mu + sigma * torch.stack([e0, second], dim=-1)
        return mu + sigma * eps

    def sample(self, params, temperature, generator, bias: float = 0.0):
        # sketch-rnn's temperature: sharper mixture weights and sigma * sqrt(T); Graves' bias b: mixture
        # logits * (1 + b) and sigma * exp(-b), i.e. likelier, neater strokes as b grows. (No top-k / top-p:
        # the bias is a mixture's control.)
        logits, mu, log_sigma, rho = self._unpack(params, bias)
        t = max(temperature, 1e-4)
        probs = torch.softmax(logits * (1.0 + bias) / t, dim=-1)
        flat = probs.reshape(-1, self.k)
        pick = torch.multinomial(flat, 1, generator=generator).reshape(*probs.shape[:-1], 1, 1)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        values = self._draw(mu, log_sigma + 0.5 * math.log(t), rho, eps)
        return values.gather(-2, pick.expand(*pick.shape[:-1], self.n)).squeeze(-2)

    def guide(self, conditional, unconditional, scale):
        """Guide the component weights (their logits, as a categorical's) and the means with ``scale``; the
        scales and correlations move from the unconditional row's to the conditional's up to ``scale`` 1 and
        stay there beyond. For two Gaussians of equal covariance the guided product N(mu_c)^W N(mu_u)^(1-W) is,
        normalised, N(mu_u + W (mu_c - mu_u)) with that same covariance: extrapolating the means at a fixed
        spread is exact per component, while extrapolating log-scales (W > 1) would shrink or blow up the spread
        for no reason the condition gives (a pen offset's spread is not what tells a sheep from a cat). Components
        pair by index (the same output units of one network). ``scale`` 0 and 1 return the unconditional and the
        conditional parameters bit for bit."""
        k, n = self.k, self.n
        head = k + k * n  # [logits | means | log-scales | correlations]
        return torch.cat([mix(conditional[..., :head], unconditional[..., :head], scale),
                          mix(conditional[..., head:], unconditional[..., head:], min(scale, 1.0))], dim=-1)

    def mode(self, params):
        logits, mu, _, _ = self._unpack(params)
        pick = logits.argmax(-1, keepdim=True).unsqueeze(-1)
        return mu.gather(-2, pick.expand(*pick.shape[:-1], self.n)).squeeze(-2)

    def relaxed(self, params, temperature, hard=False, noise=False):
        # Without noise: the mixture mean (deterministic). With noise: a reparameterised draw from a component
        # chosen by straight-through Gumbel-softmax, so a critic's gradient reaches means, sigmas and weights.
        logits, mu, log_sigma, rho = self._unpack(params)
        if not noise:
            return (torch.softmax(logits, dim=-1).unsqueeze(-1) * mu).sum(-2)
        u = torch.rand_like(logits).clamp(1e-6, 1 - 1e-6)
        soft = torch.softmax((logits - torch.log(-torch.log(u))) / max(temperature, 1e-4), dim=-1)
        weights = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1.0) + (soft - soft.detach())
        values = self._draw(mu, log_sigma, rho, torch.randn_like(mu))
        return (weights.unsqueeze(-1) * values).sum(-2)

    def accuracy_stats(self, params, target, mask):
        zero = params.new_zeros(())  # real values have no "correct"; the other parts report accuracy
        return zero, zero

    def init_bias(self, bias, values):
        """Every component starts at the data's mean and spread (uniform weights, no correlation): the first
        updates then separate components instead of first finding the data's scale."""
        k, n = self.k, self.n
        mean = values.mean(0)
        std = values.std(0, unbiased=False).clamp_min(1e-3) if values.shape[0] > 1 else torch.ones(n)
        bias[:k] = 0.0
        bias[k : k + k * n] = mean.repeat(k)
        bias[k + k * n : k + 2 * k * n] = torch.log(std).repeat(k)
        bias[k + 2 * k * n :] = 0.0
