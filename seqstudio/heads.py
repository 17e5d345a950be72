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

import contextlib
import contextvars
import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import ConfigError, PluginError
from .guidance import mix
from .spec import Binary, Categorical, FeatureSpec, Real

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


def head_class(part, options: HeadsConfig) -> type[PartHead]:
    """The ``PartHead`` class of ``part`` under ``options``: the registered one, or the NADE for Binary parts."""
    if type(part) is Binary and options.binary == "nade":
        return NADEPart
    if type(part) not in PART_HEADS:
        raise PluginError(f"no output head for {type(part).__name__} parts "
                          f"(supported: {', '.join(t.__name__ for t in PART_HEADS)})")
    return PART_HEADS[type(part)]


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    """The same values for certain: the same storage, view and version (no comparison of the data)."""
    return (a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.stride() == b.stride()
            and a.dtype == b.dtype and a.device == b.device and a._version == b._version)


def _nade_logits(v, b, c, W, V):
    """NADE's teacher-forced logits for ``N`` 0/1 frames ``v`` ``[N, D]`` in one pass, no loop over keys.

    The hidden pre-activation of key d, a_d = c + sum_{k<d} v_k W_k, is a prefix sum over the keys, and it only
    changes at the keys that are on: with the exclusive cumulative sum e_d = sum_{k<d} v_k (the on keys below
    d), every key with the same e_d shares one hidden vector. A frame with K keys on has K + 1 distinct hidden
    vectors ("segments") instead of D. The frame then costs two small matrix products, O((K + 1) x D x H)
    multiply-adds, and holds (K + 1) x (D + H) activations, where the dense prefix sum over the keys holds
    D x H hidden activations per frame (and their sigmoid and its gradient, all elementwise and
    memory-bound). On JSB-like frames (K <= 4 of 88 keys) the segment form ran 14x faster on this CPU than
    the dense one written as a masked matrix product, which had already beaten ``torch.cumsum`` over the
    keys 2x (one-off timings while writing this; BENCHMARKS.md). ``S`` = the batch's largest K + 1 (one host
    sync per call). The targets are 0/1, as a Binary part's are.
    """
    excl = (v.cumsum(-1) - v).long()  # e_d: keys on below key d = key d's segment
    S = int(v.sum(-1).max()) + 1 if v.numel() else 1
    first = (excl.unsqueeze(1) < torch.arange(S, device=v.device).view(1, S, 1)).to(v.dtype)
    hidden = torch.sigmoid(torch.matmul(v.unsqueeze(1) * first, W) + c.unsqueeze(1))  # [N, S, H]: segment s
    per_key = torch.matmul(hidden, V.t())  # [N, S, D]: every segment's output to every key
    return b + per_key.gather(1, excl.unsqueeze(1)).squeeze(1)  # each key reads its own segment


class NADEPart(PartHead, nn.Module):
    """An autoregressive head over a ``Binary(D)`` part: NADE (Larochelle & Murray 2011) whose biases come from
    the backend's state at each step (RNN-NADE, Boulanger-Lewandowski et al. 2012).

        a_d = c + sum_{k<d} v_k W_k,   p(v_d = 1 | v_<d) = sigmoid(b_d + V_d . sigmoid(a_d))

    ``params`` = [b (D visible biases) | c (H hidden biases)] from the shared projection; ``W``, ``V`` ``[D, H]``
    are this head's own weights, shared over time. Keys are ordered by column (low to high pitch on a piano
    roll). The likelihood is one pass with no loop over keys (``_nade_logits``); sampling, the mode and the
    GAN's relaxation go key by key (a loop of D steps, vectorised over the batch), the draw of each key feeding
    the next.
    """

    truncates = True
    EVAL_FRAMES = 16384  # frames per pass without gradients (evaluation): bounds the [N, S, D + H] activations

    def __init__(self, part, hidden: int = 128):
        nn.Module.__init__(self)
        PartHead.__init__(self, part)
        self.size, self.hidden = part.size, hidden
        # Small weights: the head starts close to the factorized Bernoulli of its visible biases.
        self.W = nn.Parameter(torch.randn(part.size, hidden) * 0.05)
        self.V = nn.Parameter(torch.randn(part.size, hidden) * 0.05)

    @classmethod
    def build(cls, part, mixtures, options):
        return cls(part, options.nade_hidden)

    @property
    def n_params(self) -> int:
        return self.size + self.hidden

    def conditional_logits(self, params, target):
        """Teacher-forced logits of every key given the keys below it in ``target``: shape ``[..., D]``."""
        with torch.autocast(params.device.type, enabled=False):  # prefix sums in float32 also under autocast
            b, c = params.float().split([self.size, self.hidden], dim=-1)
            lead = target.shape[:-1]
            v, b, c = target.float().reshape(-1, self.size), b.reshape(-1, self.size), c.reshape(-1, self.hidden)
            if torch.is_grad_enabled() or v.shape[0] <= self.EVAL_FRAMES:
                logits = _nade_logits(v, b, c, self.W, self.V)
            else:  # evaluation (the IWAE bound's K copies of a batch): bounded memory
                logits = torch.cat([_nade_logits(v[i : i + self.EVAL_FRAMES], b[i : i + self.EVAL_FRAMES],
                                                 c[i : i + self.EVAL_FRAMES], self.W, self.V)
                                    for i in range(0, v.shape[0], self.EVAL_FRAMES)])
            return logits.reshape(*lead, self.size)

    def log_prob(self, params, target):
        logits = self.conditional_logits(params, target)
        # Kept (detached) for accuracy_stats on the same params and targets, which the backends ask for next:
        # the teacher-forced logits then cost one pass, not two. The kept storage keeps its address unique.
        self._last = (params.detach(), target.detach(), logits.detach())
        return -F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1)

    def _cached_logits(self, params, target):
        last = getattr(self, "_last", None)
        if last is not None and all(_same_tensor(a, b) for a, b in zip(last[:2], (params, target))):
            return last[2]
        with torch.no_grad():
            return self.conditional_logits(params, target)

    def _key_by_key(self, params, choose):
        """Run the NADE forward one key at a time; ``choose(d, logit)`` gives key d's value ``[...]``."""
        b, c = params.float().split([self.size, self.hidden], dim=-1)
        a = c
        keys = []
        for d in range(self.size):
            v = choose(d, b[..., d] + torch.sigmoid(a) @ self.V[d])
            keys.append(v)
            a = a + v.unsqueeze(-1) * self.W[d]
        return torch.stack(keys, dim=-1)

    def sample(self, params, temperature, generator, bias=0.0, top_k=0, top_p=1.0):
        t = max(temperature, 1e-4)
        return self._key_by_key(params, lambda d, logit: torch.bernoulli(
            truncate_binary(torch.sigmoid(logit / t), top_k, top_p), generator=generator))

    def mode(self, params):
        """Greedy: each key at its likelier value given the keys already chosen (not the exact joint mode)."""
        return self._key_by_key(params, lambda d, logit: (logit > 0).to(logit.dtype))

    def guided_sample(self, conditional, unconditional, scale, temperature, generator, bias=0.0, top_k=0,
                      top_p=1.0):
        """Guidance inside the chain: the conditional and the unconditional NADE run side by side, key d drawn
        from the mixed logit of p(v_d | v_<d) of the two, and that draw fed to both, so every conditional
        step of the NADE is guided (not only the first-order biases)."""
        t = max(temperature, 1e-4)
        b_c, a_c = conditional.float().split([self.size, self.hidden], dim=-1)
        b_u, a_u = unconditional.float().split([self.size, self.hidden], dim=-1)
        keys = []
        for d in range(self.size):
            logit = mix(b_c[..., d] + torch.sigmoid(a_c) @ self.V[d], b_u[..., d] + torch.sigmoid(a_u) @ self.V[d],
                        scale)
            if temperature <= 0:
                v = (logit > 0).to(logit.dtype)
            else:
                v = torch.bernoulli(truncate_binary(torch.sigmoid(logit / t), top_k, top_p), generator=generator)
            keys.append(v)
            a_c = a_c + v.unsqueeze(-1) * self.W[d]
            a_u = a_u + v.unsqueeze(-1) * self.W[d]
        return torch.stack(keys, dim=-1)

    def relaxed(self, params, temperature, hard=False, noise=False):
        # Key by key, each key's binary-concrete relaxation (as BernoulliPart's) feeding the keys above it, so
        # a critic's gradient reaches b, c, W and V through the whole chain.
        def choose(d, logit):
            return BernoulliPart.relaxed(self, logit, temperature, hard=hard, noise=noise)
        return self._key_by_key(params, choose)

    def accuracy_stats(self, params, target, mask):
        # The teacher-forced conditionals' predictions (each key given the true keys below it).
        return BernoulliPart.accuracy_stats(self, self._cached_logits(params, target), target, mask)

    def init_bias(self, bias, values):
        """Visible biases at the marginals' logits, less the hidden units' mean input at the start (``V`` times
        sigmoid(0)); hidden biases 0."""
        p = values.mean(0).clamp(1e-4, 1 - 1e-4)
        bias[: self.size].copy_(torch.log(p) - torch.log1p(-p) - 0.5 * self.V.sum(-1))
        bias[self.size :] = 0.0


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
