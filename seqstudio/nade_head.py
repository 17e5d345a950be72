"""The NADE head of a Binary part (Larochelle & Murray 2011; ``--set heads.binary=nade``): keys predicted one after
another, each given the keys below it, with its likelihood in one pass over the keys."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .guidance import mix
from .part_heads import BernoulliPart, PartHead, truncate_binary


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
