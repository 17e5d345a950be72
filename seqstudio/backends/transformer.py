"""A decoder-only Transformer language model (Vaswani et al. 2017; GPT-2's pre-LN blocks, as in nanoGPT).

    h_0 = W_in x_{t-1} + pos(t) [+ W_c e],   h_l = block_l(h_{l-1}),   p(x_t | x_<t) = head(LN(h_L))

Step t reads step t - 1 (a zero vector at t = 0, ``shift_right``), so the inputs and targets are those of the
rnn and the two rows of a benchmark compare like for like. Every step's output distribution comes from the
FeatureSpec's heads (``build_head``: Bernoulli, NADE, categorical, Gaussian mixtures), so the model never knows the
domain. Attention is PyTorch's ``scaled_dot_product_attention`` with ``is_causal`` (flash / memory-efficient
kernels on a GPU); a padded window needs no padding mask because padding only ever follows the real steps.

Positions: ``sinusoidal`` by default, because it is defined at every position, so ``generate --length`` may run
past the training window (the model has then not seen those positions: quality may fall, nothing breaks);
``learned`` (GPT-2's table) is an option, refused past ``max_positions`` with one clear line.

Sampling keeps each layer's keys and values (``KVCache``): one generated step costs one position's forward pass,
not the whole prefix again. ``step`` is the training transition exactly (tests compare the two at 1e-5).

Conditions (``seqstudio.conditions``): the condition embedding, projected to the model width, is added to every
step's input. A sequence (text) condition is not taken: ``accepts_text`` is False, so a text run is refused
with one line naming the families that take one (attention to the text is future work).

The model has no latent, so its likelihood is exact: it reports ``kl`` = 0, ``elbo`` and, with
``--iw-samples``, that same exact likelihood as the "importance-weighted bound", the columns of the rnn's row.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..heads import build_head
from .autoregressive import AutoregressiveBackend, shift_right
from .base import check_in_range, check_positive
from .exact_likelihood import ExactLikelihood

POSITIONS = ("sinusoidal", "learned")


@dataclasses.dataclass
class TransformerConfig:
    d_model: int = 256  # width of the residual stream
    layers: int = 4  # Transformer blocks
    heads: int = 4  # attention heads per block (d_model must divide by it)
    ff_mult: int = 4  # the feed-forward layer's width, in multiples of d_model
    dropout: float = 0.1  # on attention weights, after every sub-layer and on the input embedding
    positions: str = "sinusoidal"  # sinusoidal (any length) | learned (a table of max_positions)
    max_positions: int = 1024  # learned positions only: the longest sequence (prime + generated) it can see
    mixtures: int = 20  # Gaussian-mixture components for real-valued parts (e.g. pen offsets)

    def __post_init__(self):
        check_positive(self, ("d_model", "layers", "heads", "ff_mult", "max_positions", "mixtures"))
        check_in_range(self, "dropout", 0.0, 1.0)
        if self.d_model % self.heads:
            raise ConfigError(f"backend.d_model ({self.d_model}) must be a multiple of backend.heads ({self.heads})")
        if self.positions not in POSITIONS:
            raise ConfigError(f"backend.positions must be one of {', '.join(POSITIONS)}, got {self.positions!r}")


def sinusoid(positions: torch.Tensor, width: int) -> torch.Tensor:
    """The fixed position code of Vaswani et al. (2017): ``[T, width]`` sines and cosines of ``positions``."""
    half = width // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    angle = positions.float().unsqueeze(-1) * freq
    code = torch.cat([angle.sin(), angle.cos()], dim=-1)
    return F.pad(code, (0, width - 2 * half))  # an odd width: one zero column


class KVCache:
    """What sampling keeps between steps: every layer's keys and values ``[n, heads, T, head_size]`` so far,
    and the next position. Appending is one ``torch.cat`` per layer and step."""

    def __init__(self, layers: int):
        self.keys: list[torch.Tensor | None] = [None] * layers
        self.values: list[torch.Tensor | None] = [None] * layers
        self.position = 0

    def extend(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ``k``, ``v`` of new positions to ``layer``'s cache; return all keys and values so far."""
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


class CausalSelfAttention(nn.Module):
    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.heads, self.dropout = c.heads, c.dropout
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.out = nn.Linear(c.d_model, c.d_model)
        self.resid_dropout = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in self.qkv(x).split(C, dim=2))
        past = cache is not None and cache.keys[layer] is not None
        if cache is not None:
            k, v = cache.extend(layer, k, v)
        if past and T > 1:  # a chunk after cached steps would need an offset mask; the sampler never asks for one
            raise ValueError("the cache takes one step at a time once it holds steps")
        # Causal within a chunk; one new step after cached ones sees every cached step (no mask needed).
        y = F.scaled_dot_product_attention(q, k, v, is_causal=not past and T > 1,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.resid_dropout(self.out(y.transpose(1, 2).reshape(B, T, C)))


class Block(nn.Module):
    """Pre-LN: x + attn(LN(x)), then x + MLP(LN(x)) (GPT-2), which trains without warm-up more readily."""

    def __init__(self, c: TransformerConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.d_model)
        self.attn = CausalSelfAttention(c)
        self.ln_2 = nn.LayerNorm(c.d_model)
        self.mlp = nn.Sequential(nn.Linear(c.d_model, c.ff_mult * c.d_model), nn.GELU(),
                                 nn.Linear(c.ff_mult * c.d_model, c.d_model), nn.Dropout(c.dropout))

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


class Transformer(ExactLikelihood, AutoregressiveBackend):
    name = "transformer"
    description = "decoder-only Transformer (pre-LN, causal scaled-dot-product attention, cached keys/values)"
    Config = TransformerConfig
    accepts_conditions = True

    def __init__(self, spec, config: TransformerConfig, conditions=None, text=None):
        super().__init__(spec, config, conditions, text)
        c = config
        self.embed = nn.Linear(spec.feature_width, c.d_model)
        if c.positions == "learned":
            self.position_table = nn.Embedding(c.max_positions, c.d_model)
        if self.condition_size:
            self.condition_proj = nn.Linear(self.condition_size, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.layers)])
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = build_head(spec, c.d_model, c.mixtures)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: residual projections shrink with depth
            if name.endswith(("attn.out.weight", "mlp.2.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    @classmethod
    def tiny_config(cls):
        return cls.Config(d_model=16, layers=2, heads=2, ff_mult=2, dropout=0.1, mixtures=3)

    # -- the network ---------------------------------------------------------------------------------------------
    def position_code(self, start: int, length: int) -> torch.Tensor:
        """``[length, d_model]`` codes of positions ``start ..``; learned positions refuse to run off their table."""
        positions = torch.arange(start, start + length, device=self.device)
        if self.config.positions == "sinusoidal":
            return sinusoid(positions, self.config.d_model)
        if start + length > self.config.max_positions:
            raise ConfigError(f"this transformer has {self.config.max_positions} learned positions "
                              f"(backend.max_positions) and was given a sequence of {start + length} steps: "
                              f"generate fewer steps (prime included), or train with a larger "
                              f"backend.max_positions or backend.positions=sinusoidal")
        return self.position_table(positions)

    def hidden(self, inputs: torch.Tensor, e: torch.Tensor | None, cache: KVCache | None = None) -> torch.Tensor:
        """The last layer's output ``[B, T, d_model]`` for feature-layout ``inputs`` ``[B, T, F]`` (each step's
        input is the previous step), placed after the ``cache``'s steps when one is given (and filling it)."""
        start = cache.position if cache is not None else 0
        h = self.embed(inputs) + self.position_code(start, inputs.shape[1]).to(inputs.dtype)
        if e is not None:
            h = h + self.condition_proj(e.to(h.dtype)).unsqueeze(1)
        h = self.drop(h)
        for i, block in enumerate(self.blocks):
            h = block(h, cache, i)
        if cache is not None:
            cache.position += inputs.shape[1]
        return self.ln_f(h)

    def teacher_forced(self, x: torch.Tensor, condition: torch.Tensor | None = None, text=None) -> torch.Tensor:
        """Head parameters for p(x_t | x_<t) at every step, ``[B, T, n_params]``, in one pass (``text`` is never
        given: the backend takes no sequence condition)."""
        e = self.condition_vector(condition, x.shape[0])
        return self.head(self.hidden(shift_right(self.spec.to_features(x)), e))

    # -- generation ---------------------------------------------------------------------------------------------
    def start(self, n, prime, options, generator):
        """An empty cache and the zero start input; a prime runs teacher-forced in one causal pass into the
        cache, and its last step is the pending input of the first generated step."""
        e = self.condition_vector(options.condition, n)
        cache = KVCache(self.config.layers)
        if prime is None:
            return (cache, e), torch.zeros(n, self.spec.feature_width, device=self.device)
        features = self.spec.to_features(prime)
        self.hidden(shift_right(features), e, cache)
        return (cache, e), features[:, -1]

    def step(self, state, pending, options, generator):
        """One position's forward pass on top of the cache (``start`` always leaves an input pending)."""
        cache, e = state
        return self.head(self.hidden(pending.unsqueeze(1), e, cache)[:, 0]), (cache, e)
