"""The LSTM language model: the baseline row of every benchmark (JSB Chorales, KanjiVG as RNN-GMM, text).

    h_t = LSTM(phi_x(x_t), h_{t-1}),  h_{-1} = 0,   p(x_t | x_<t) = head(decoder(h_{t-1}))

``phi_x`` and ``decoder`` are MLPs of ``phi_layers`` x ``phi_size`` (ReLU), as in the VRNN, so the two compare
at equal size: this is the VRNN with its latent removed (until 0.1 its ``latent: false`` switch; checkpoints
of such runs load here unchanged). Training is one ``nn.LSTM`` call over the whole window (cuDNN / oneDNN).

The model has no latent, so its ELBO is its exact log-likelihood: it reports ``kl`` = 0 and ``elbo``, and with
``iw_samples`` the "importance-weighted bound" (which is that likelihood again), so a benchmark table has the
same columns for this row as for the latent models.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn

from ..heads import build_head
from .autoregressive import AutoregressiveBackend, LSTMStateFromVector, cat_condition, shift_right
from .base import check_in_range, check_positive
from .exact_likelihood import ExactLikelihood
from .window_rnn import TextSampling, TextWindowLayer, cat_context, text_tensor


@dataclasses.dataclass
class RNNConfig:
    hidden_size: int = 256  # LSTM state
    phi_size: int = 256  # width of the input feature extractor and of the decoder's layers
    phi_layers: int = 1  # hidden layers in each of those MLPs
    dropout: float = 0.0  # on phi_x outputs and on the decoder's input
    mixtures: int = 20  # Gaussian-mixture components for real-valued parts (e.g. pen offsets)

    def __post_init__(self):
        check_positive(self, ("hidden_size", "phi_size", "phi_layers"))
        check_in_range(self, "dropout", 0.0, 1.0)


def mlp(in_features: int, width: int, layers: int) -> nn.Sequential:
    """``layers`` x (Linear, ReLU), ``in_features`` -> ``width``."""
    mods = []
    for i in range(layers):
        mods += [nn.Linear(in_features if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*mods)


class RNN(TextSampling, ExactLikelihood, AutoregressiveBackend):
    name = "rnn"
    description = "LSTM language model, the VRNN's sizes without the latent: the baseline row of the benchmarks"
    Config = RNNConfig
    accepts_conditions = True
    accepts_text = True  # text: Graves' window layer (window_rnn.py) under the LSTM; its context [h1_t, w_t]
    # goes into every step's input and, through text_h, into what the decoder reads for h_{t-1}

    def __init__(self, spec, config: RNNConfig, conditions=None, text=None):
        super().__init__(spec, config, conditions, text)
        c = config
        E = self.condition_size  # conditions: the initial state and every step's input (0 = unconditional)
        C = 0
        if text is not None:  # text
            self.text_layer = TextWindowLayer(text, spec.feature_width, c.hidden_size)
            C = self.text_layer.context_size
            self.text_h = nn.Linear(C, c.hidden_size, bias=False)
        self.phi_x = mlp(spec.feature_width + E + C, c.phi_size, c.phi_layers)
        if E:
            self.condition_state = LSTMStateFromVector(E, 1, c.hidden_size)
        self.dropout = nn.Dropout(c.dropout)
        self.rnn = nn.LSTM(c.phi_size, c.hidden_size, batch_first=True)
        self.decoder = mlp(c.hidden_size, c.phi_size, c.phi_layers)
        self.head = build_head(spec, c.phi_size, c.mixtures)

    @classmethod
    def tiny_config(cls):
        return cls.Config(hidden_size=16, phi_size=16, mixtures=3)

    def _params(self, h_prev: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.decoder(h_prev)))

    def _initial(self, e: torch.Tensor | None, n: int):
        """``(h, c)`` before the first step, ``[1, n, H]`` each: zeros, or from the condition embedding."""
        if e is None:
            h = torch.zeros(1, n, self.config.hidden_size, device=self.device)
            return h, torch.zeros_like(h)
        return self.condition_state(e)

    def teacher_forced(self, x: torch.Tensor, condition: torch.Tensor | None = None,
                       text: torch.Tensor | None = None) -> torch.Tensor:
        """Head parameters for p(x_t | h_{t-1}) at every step ``[B, T, n_params]``, from one nn.LSTM call;
        ``condition``: the batch's ``[B, A]`` attribute indices (conditional runs); ``text``: its ``[B, U]``
        symbol ids (text runs; the window layer runs first, step by step)."""
        e = self.condition_vector(condition, x.shape[0])
        features = self.spec.to_features(x)
        ctx = None
        if self.text_spec is not None:  # text
            ctx, _ = self.text_layer.run(shift_right(features), text_tensor(self, text, x.shape[0]))
        px = self.dropout(self.phi_x(cat_context(cat_condition(features, e), ctx)))
        h0, c0 = self._initial(e, x.shape[0])
        out, _ = self.rnn(px[:, :-1], (h0.to(px.dtype), c0.to(px.dtype)))
        h_prev = torch.cat([h0[0].unsqueeze(1).to(out.dtype), out], dim=1)
        if ctx is not None:
            h_prev = h_prev + self.text_h(ctx).to(h_prev.dtype)
        return self._params(h_prev)

    # -- generation ---------------------------------------------------------------------------------------------
    def start(self, n, prime, options, generator):
        e = self.condition_vector(options.condition, n)
        h0, c0 = self._initial(e, n)
        if self.text_spec is not None:
            return self._start_text(n, prime, options, e, h0, c0), None
        state = (h0[0], c0[0], e)
        if prime is not None:
            _, (h1, c1) = self.rnn(self.dropout(self.phi_x(cat_condition(self.spec.to_features(prime), e))),
                                   (h0, c0))
            state = (h1[0], c1[0], e)
        return state, None

    def _start_text(self, n, prime, options, e, h0, c0):
        """text: the state ends with the window's ``(layer state, phi, one-hot text, mask, x_last, ctx_prev)``."""
        text = text_tensor(self, options.text, n)
        onehot, mask = self.text_layer.symbols(text)
        layer = self.text_layer.initial(n, self.device)
        x_last, ctx_prev = torch.zeros(n, self.spec.feature_width, device=self.device), None
        if prime is not None:
            features = self.spec.to_features(prime)
            ctx, layer = self.text_layer.run(shift_right(features), text, layer)
            _, (h0, c0) = self.rnn(self.dropout(self.phi_x(cat_context(cat_condition(features, e), ctx))), (h0, c0))
            x_last, ctx_prev = features[:, -1], ctx[:, -1]
        return h0[0], c0[0], e, (layer, None, onehot, mask, x_last, ctx_prev)

    def _step_text(self, state, pending):
        h, cell, e, (layer, phi, onehot, mask, x_last, ctx_prev) = state
        if pending is not None:
            px = self.dropout(self.phi_x(cat_context(cat_condition(pending, e), ctx_prev))).unsqueeze(1)
            _, (h1, c1) = self.rnn(px, (h.unsqueeze(0), cell.unsqueeze(0)))
            h, cell, x_last = h1[0], c1[0], pending
        ctx, layer, phi = self.text_layer.step(x_last, layer, onehot, mask)
        return self._params(h + self.text_h(ctx)), (h, cell, e, (layer, phi, onehot, mask, x_last, ctx))

    def step(self, state, pending, options, generator):
        if self.text_spec is not None:
            return self._step_text(state, pending)
        h, cell, e = state
        if pending is not None:
            px = self.dropout(self.phi_x(cat_condition(pending, e))).unsqueeze(1)
            _, (h1, c1) = self.rnn(px, (h.unsqueeze(0), cell.unsqueeze(0)))
            h, cell = h1[0], c1[0]
        return self._params(h), (h, cell, e)
