"""Variational RNN (Chung et al. 2015), with its VRNN-I ablation as a config switch.

Per step t, with h_{t-1} the LSTM state before x_t:

    prior       p(z_t | h_{t-1})                     = N(mu_p, sigma_p)   (``prior: independent``: N(0, I))
    posterior   q(z_t | phi_x(x_t), h_{t-1})         = N(mu_q, sigma_q)
    generation  p(x_t | phi_z(z_t), h_{t-1})         through the FeatureSpec's output heads
    recurrence  h_t = LSTM([phi_x(x_t), phi_z(z_t)], h_{t-1})

and the loss is sum_t KL(q || p) - log p(x_t | ...). Without z it is the ``rnn`` backend (``rnn.py``): the
baseline of the same size, which until 0.1 was this class's ``latent: false``.

``posterior: smoothing`` replaces the filtering posterior by a smoothing one, as in SRNN (Fraccaro et al. 2016):

    a_t = LSTM_back(phi_x(x_t), a_{t+1})          (one nn.LSTM call over the reversed inputs, before the loop)
    q(z_t | a_t, h_{t-1})                         a_t summarises x_{t:T}; h_{t-1} summarises x_<t and z_<t

which is the form of the true posterior p(z_t | z_<t, x_{1:T}) of this model (h_{t-1} is a function of x_<t and
z_<t). SRNN's backward RNN also reads the forward states d_t; here the forward states depend on z, so they cannot
exist before the loop, and they enter q through h_{t-1} instead. Generation (the prior) is unchanged, and the
IWAE bound uses whichever posterior the model has as its proposal.

``posterior_residual: true`` is SRNN's "Resq" parameterisation, for either posterior: the posterior's mean
network outputs a residual on the prior's mean, mu_q = mu_p(h_{t-1}) + delta_t (its variance stays its own), so
q starts from what the prior already knows and learns only the correction the data asks for. mu_p depends on
h_{t-1}, hence on z_<t, so the prior's mean runs inside the fused loop (its first layer joins the one matmul
that h feeds; ``vrnn_loop.py``); the full prior is still recomputed after the loop for the KL, on stacked
tensors (same weights, same values). The IWAE bound is unchanged: log q(z | x) only needs q's standard
deviation and the noise, z = mu_q + sigma_q eps.

Why the code is shaped the way it is (speed): only what truly needs h_{t-1} runs in the step loop — the
h-dependent half of the posterior's first layer, the posterior's remaining layers, the reparameterised sample,
phi_z and the LSTM cell update. Everything that depends on x alone (phi_x, its projections into the posterior
and the LSTM gates, as one matmul) runs over the whole sequence before the loop, and everything that depends
only on (h_{t-1}, z_t) — the prior, the decoder, the heads' log-likelihood, the KL — runs after it on stacked
tensors. The loop itself is one autograd node with a hand-written backward (``vrnn_loop.py``): untaped
forward, and weight gradients formed after the reverse loop as one large matmul each, as cuDNN does for its
LSTM. Nothing in the loop reads a value back to the host.

Evaluation reports the ELBO per step and, with ``iw_samples=K``, the importance-weighted bound (Burda et al.
2016) with the model's posterior (filtering or smoothing) as proposal: log (1/K) sum_k p(x, z^k) / q(z^k | x),
a lower bound on log p(x) that tightens as K grows — the figure to compare with published log-likelihoods.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..heads import build_head
from ..guidance import sampling_noise
from .autoregressive import AutoregressiveBackend, LSTMStateFromVector, cat_condition, likelihood_stats, shift_right
from .base import check_in_range, check_positive
from .latent import LOG_2PI, ImportanceWeighted, LatentBackend, gaussian_kl, gaussian_log_prob
from .rnn import mlp
from .vrnn_loop import MIN_STD, fused_filter
from .window_rnn import TextSampling, TextWindowLayer, cat_context, text_tensor

__all__ = ["VRNN", "VRNNConfig", "gaussian_kl", "gaussian_log_prob"]


@dataclasses.dataclass
class VRNNConfig:
    hidden_size: int = 256  # LSTM state
    latent_size: int = 32  # z_t
    phi_size: int = 256  # width of every feature extractor / prior / posterior / decoder layer
    phi_layers: int = 1  # hidden layers in each of those MLPs
    prior: str = "conditional"  # conditional: p(z_t | h_{t-1}) (VRNN) | independent: N(0, I) (VRNN-I)
    posterior: str = "filtering"  # filtering: q(z_t | x_t, h_{t-1}) | smoothing: q(z_t | x_{t:T}, h_{t-1}) (SRNN)
    posterior_residual: bool = False  # SRNN's Resq: mu_q = mu_p + delta (either posterior; needs prior conditional)
    dropout: float = 0.0  # on phi_x outputs and on the decoder's input
    beta: float = 1.0  # final KL weight
    kl_warmup_steps: int = 0  # KL weight rises linearly from 0 to beta over this many optimisation steps
    free_nats: float = 0.0  # per-step KL below this is not penalised (free bits, in nats per time step)
    iw_chunk: int = 1024  # sequences (copies x batch) processed at once by the importance-weighted bound
    mixtures: int = 20  # Gaussian-mixture components for real-valued parts (e.g. pen offsets)
    # ``latent: false`` was the plain RNN baseline until it became the ``rnn`` backend (old runs say true).
    retired_options: ClassVar[dict] = {"latent": (True, (
        "the plain RNN is now its own backend: use --backend rnn (same hidden_size, phi_size, phi_layers, dropout, "
        "mixtures); for a run directory trained with it, set `backend: name: rnn` in its config.yaml and delete "
        "latent, latent_size, prior, beta, kl_warmup_steps, free_nats and iw_chunk there"))}

    def __post_init__(self):
        if self.prior not in ("conditional", "independent"):
            raise ConfigError(f"backend.prior must be 'conditional' or 'independent', got {self.prior!r}")
        if self.posterior not in ("filtering", "smoothing"):
            raise ConfigError(f"backend.posterior must be 'filtering' or 'smoothing', got {self.posterior!r}")
        if self.posterior_residual and self.prior != "conditional":
            raise ConfigError("backend.posterior_residual=true needs backend.prior=conditional (with the N(0, I) "
                              "prior the residual would be on a mean of zero, the plain posterior)")
        check_positive(self, ("hidden_size", "latent_size", "phi_size", "phi_layers", "iw_chunk"))
        check_in_range(self, "dropout", 0.0, 1.0)


def _stats(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Network output -> (mean, log-variance), with a softplus standard deviation (smooth, bounded below)."""
    mu, s = raw.chunk(2, dim=-1)
    std = F.softplus(s) + MIN_STD
    return mu, 2.0 * torch.log(std)


class VRNN(TextSampling, LatentBackend, ImportanceWeighted, AutoregressiveBackend):
    name = "vrnn"
    description = "variational RNN (Chung et al. 2015): per-step latent with conditional prior; ELBO + IWAE"
    Config = VRNNConfig
    accepts_conditions = True
    # text ("VRNN-GMM synthesis"): Graves' window layer (window_rnn.py) under the VRNN; its context ctx_t =
    # [h1_t, w_t] joins x_t in phi_x (so the posterior and the recurrence see it) and, through text_h, what the
    # prior and the decoder read for h_{t-1}. The fused loop is unchanged: ctx is computed before it.
    accepts_text = True

    def __init__(self, spec, config: VRNNConfig, conditions=None, text=None):
        super().__init__(spec, config, conditions, text)
        c = config
        H, P, L = c.hidden_size, c.phi_size, c.latent_size
        E = self.condition_size  # conditions: phi_x reads [x_t | c] (posterior and recurrence), the initial state
        C = 0
        if text is not None:  # text
            self.text_layer = TextWindowLayer(text, spec.feature_width, H)
            C = self.text_layer.context_size
            self.text_h = nn.Linear(C, H, bias=False)
        self.phi_x = mlp(spec.feature_width + E + C, P, c.phi_layers)
        if E:  # comes from c, and the prior and decoder read h_{t-1} + W_c c
            self.condition_state = LSTMStateFromVector(E, 1, H)
            self.condition_h = nn.Linear(E, H, bias=False)
        self.dropout = nn.Dropout(c.dropout)
        self.phi_z = mlp(L, P, c.phi_layers)
        # Posterior's first layer on [phi_x(x_t), h_{t-1}] (smoothing: [a_t, h_{t-1}], a_t the backward RNN's
        # state), split so the x half runs before the loop.
        if c.posterior == "smoothing":
            self.backward_rnn = nn.LSTM(P, H, batch_first=False)
            self.post_back = nn.Linear(H, P)
        else:
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

    @classmethod
    def tiny_config(cls):
        return cls.Config(hidden_size=16, latent_size=4, phi_size=16, mixtures=3)

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

    def backward_states(self, px: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """The smoothing posterior's a_t = LSTM_back(phi_x(x_t), a_{t+1}), time-major ``[T, B, H]``, from one
        nn.LSTM call: each sequence is reversed within its own length (``lengths``; None = all of T), so the
        padding after a sequence's end comes after its first step backwards and never reaches a real a_t."""
        T, B = px.shape[:2]
        steps = torch.arange(T, device=px.device).unsqueeze(1)  # [T, 1]
        if lengths is None:
            index = (T - 1 - steps).expand(T, B)
        else:
            lengths = lengths.to(px.device).unsqueeze(0)
            index = torch.where(steps < lengths, lengths - 1 - steps, steps)  # an involution: undoes itself
        index = index.unsqueeze(-1)
        out, _ = self.backward_rnn(px.gather(0, index.expand(-1, -1, px.shape[-1])))
        return out.gather(0, index.expand(-1, -1, out.shape[-1]))

    def _with_condition_h(self, h: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        """What the prior and the decoder read for h_{t-1} (``[B, H]`` or ``[B, T, H]``): h + W_c c."""
        if e is None:
            return h
        ch = self.condition_h(e).to(h.dtype)
        return h + (ch.unsqueeze(1) if h.dim() == 3 else ch)

    def filter(self, x: torch.Tensor, eps: torch.Tensor | None = None, state=None,
               lengths: torch.Tensor | None = None, e: torch.Tensor | None = None, ctx: torch.Tensor | None = None):
        """Run the posterior and recurrence over storage-layout ``x`` [B, T, D] (the fused loop of vrnn_loop).

        ``eps`` [T, B, L]: the standard-normal draws (drawn here when not given). ``lengths`` [B]: the sequences'
        lengths, which the smoothing posterior's backward RNN needs (None: every sequence fills T). ``e`` [B, E]:
        the condition embedding (conditional runs; also sets the initial state when ``state`` is not given).
        ``ctx`` [B, T, C]: the text window layer's outputs (text-conditioned runs), read with x_t by phi_x.
        Returns stacked per-step tensors (time on dim 1): ``h_prev`` (h_{t-1}), ``pz`` (phi_z(z_t)), ``z``,
        ``mu_q``, ``logvar_q``, ``eps``, and the final ``(h, c)`` state.
        """
        c = self.config
        B, T, H = x.shape[0], x.shape[1], c.hidden_size
        # Time-major from the start: the loop reads one contiguous [B, .] slice per step.
        px = self.dropout(self.phi_x(cat_context(cat_condition(self.spec.to_features(x), e), ctx).transpose(0, 1)))
        if c.posterior == "smoothing":
            x_proj = torch.cat([self.post_back(self.backward_states(px, lengths)), self.gates_x(px)], dim=-1)
        else:
            # [qx | gx] from one matmul: the x-dependent parts of the posterior's first layer and the LSTM gates.
            x_proj = F.linear(px, torch.cat([self.post_x.weight, self.gates_x.weight]),
                              torch.cat([self.post_x.bias, self.gates_x.bias]))
        w_h, prior = self.from_h.weight, None
        if c.posterior_residual:  # Resq: the prior's mean runs in the loop (vrnn_loop.py)
            x_proj, w_h, prior = self._prior_in_loop(x_proj, e, ctx, T, B)
        if eps is None:
            eps = torch.randn(T, B, c.latent_size, device=x.device, dtype=px.dtype)
        if state is None and e is not None:
            h, cell = (s[0].to(px.dtype) for s in self.condition_state(e))
        elif state is None:
            h = x.new_zeros(B, H, dtype=px.dtype)
            cell = x.new_zeros(B, H, dtype=px.dtype)
        else:
            h, cell = state
        h_prev, pz, z, mu, logvar, h, cell = fused_filter(
            x_proj, eps, h, cell, w_h, self.gates_z.weight, self._post_hidden, self.post_rest[2],
            [m for m in self.phi_z if isinstance(m, nn.Linear)], prior)
        batch_first = lambda t: t.transpose(0, 1)  # noqa: E731
        return {"h_prev": batch_first(h_prev), "pz": batch_first(pz), "z": batch_first(z),
                "mu_q": batch_first(mu), "logvar_q": batch_first(logvar), "eps": batch_first(eps),
                "state": (h, cell)}

    def _prior_in_loop(self, x_proj, e, ctx, T, B):
        """Resq's additions to the fused loop's inputs: ``x_proj`` gains the prior's first layer applied to what
        is added to h_{t-1} before the prior (its bias, W_c c, text_h(ctx_t)), ``W_h`` that layer's weight, and
        the loop gets the prior's other hidden layers and the mean half of its output layer."""
        first, L = self.prior_net[0][0], self.config.latent_size
        offset = None  # [B, H] or [B, T, H]: h_c - h_{t-1}, exactly as _with_text_h(_with_condition_h(.)) adds
        if e is not None:
            offset = self.condition_h(e).unsqueeze(1)
        if ctx is not None:
            t = self.text_h(ctx)
            offset = t if offset is None else offset + t
        if offset is None:
            block = first.bias.to(x_proj.dtype).expand(T, B, -1)
        else:
            block = F.linear(offset.to(x_proj.dtype), first.weight.to(x_proj.dtype), first.bias.to(x_proj.dtype))
            block = block.transpose(0, 1).expand(T, B, -1)
        hidden = [m for m in self.prior_net[0][2:] if isinstance(m, nn.Linear)]
        out = self.prior_net[1]
        return (torch.cat([x_proj, block], dim=-1), torch.cat([self.from_h.weight, first.weight]),
                (hidden, (out.weight[:L], out.bias[:L])))

    @property
    def _post_hidden(self) -> list[nn.Linear]:
        return [m for m in self.post_rest[1] if isinstance(m, nn.Linear)]

    def _decode_params(self, pz, h_prev):
        return self.head(self.dropout(self.decoder(torch.cat([pz, h_prev], dim=-1))))

    # -- training -----------------------------------------------------------------------------------------------------
    def _terms(self, x, mask, eps=None, condition=None, text=None):
        """Per-step log p(x_t | .), KL and the IWAE log-weight terms (all [B, T]), plus head parameters."""
        e = self.condition_vector(condition, x.shape[0])
        ctx = None
        if self.text_spec is not None:  # text: the window layer runs first, step by step
            ctx, _ = self.text_layer.run(shift_right(self.spec.to_features(x)), text_tensor(self, text, x.shape[0]))
        out = self.filter(x, eps, lengths=mask.sum(1).long() if self.config.posterior == "smoothing" else None,
                          e=e, ctx=ctx)
        h_c = self._with_text_h(self._with_condition_h(out["h_prev"], e), ctx)
        params = self._decode_params(out["pz"], h_c)
        ll = self.head.log_prob(params, x)
        mu_p, logvar_p = self._prior(h_c)
        kl = gaussian_kl(out["mu_q"].float(), out["logvar_q"].float(), mu_p.float(), logvar_p.float())
        return ll, kl, (out, mu_p, logvar_p), params

    def loss(self, batch, step=None):
        x, mask = batch["x"], batch["mask"]
        ll, kl, _, params = self._terms(x, mask, condition=batch.get("condition"), text=batch.get("text"))
        m = mask.to(ll.dtype)
        nll = -(ll * m).sum()
        loss = self.elbo_loss(nll, kl, mask.sum(), step, weights=m)
        return loss, likelihood_stats(self.head, params, x, mask, nll, (kl * m).sum())

    # -- evaluation ---------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def log_weights(self, x: torch.Tensor, mask: torch.Tensor, k: int, condition=None, text=None) -> torch.Tensor:
        """``[k, B]`` importance log-weights log p(x, z) - log q(z | x), one per posterior trajectory (the proposal
        is the model's posterior, filtering or smoothing; text runs: every copy reads its line's ``text``)."""
        B = x.shape[0]
        rows = max(1, self.config.iw_chunk // B)
        out = []
        for start in range(0, k, rows):
            n = min(rows, k - start)
            xr = x.repeat(n, 1, 1)
            mr = mask.repeat(n, 1).to(torch.float32)
            cr = condition.repeat(n, 1) if condition is not None else None
            tr = text.repeat(n, 1) if text is not None and self.text_spec is not None else None
            ll, _, (o, mu_p, logvar_p), _ = self._terms(xr, mr, condition=cr, text=tr)
            log_p_z = gaussian_log_prob(o["z"].float(), mu_p.float(), logvar_p.float())
            log_q_z = -0.5 * (LOG_2PI + o["logvar_q"].float() + o["eps"].float().pow(2)).sum(-1)
            w = ((ll + log_p_z - log_q_z) * mr).sum(-1)
            out.append(w.view(n, B))
        return torch.cat(out, dim=0)

    # -- generation ---------------------------------------------------------------------------------------------------
    def start(self, n, prime, options, generator):
        """The prime (if any) is run through the posterior and the recurrence; generation continues from the state
        it leaves, which has consumed every prime step."""
        e = self.condition_vector(options.condition, n)
        if e is None:
            h = torch.zeros(n, self.config.hidden_size, device=self.device)
            cell = torch.zeros_like(h)
        else:
            h, cell = (s[0] for s in self.condition_state(e))
        if self.text_spec is not None:
            return self._start_text(n, prime, e, h, cell, options, generator), None
        if prime is not None:
            eps = sampling_noise((prime.shape[1], n, self.config.latent_size), generator=generator,
                                 device=self.device, batch_dim=1)
            h, cell = self.filter(prime, eps, state=(h, cell), e=e)["state"]
        return (h, cell, None, e), None

    # -- text ---------------------------------------------------------------------------------------------------------
    def _with_text_h(self, h: torch.Tensor, ctx: torch.Tensor | None) -> torch.Tensor:
        return h if ctx is None else h + self.text_h(ctx).to(h.dtype)

    def _start_text(self, n, prime, e, h, cell, options, generator):
        """The state ends with the window's ``(layer state, phi, one-hot text, mask, x_last, ctx_prev)``."""
        text = text_tensor(self, options.text, n)
        onehot, mask = self.text_layer.symbols(text)
        layer = self.text_layer.initial(n, self.device)
        x_last, ctx_prev, pz = torch.zeros(n, self.spec.feature_width, device=self.device), None, None
        if prime is not None:
            features = self.spec.to_features(prime)
            ctx, layer = self.text_layer.run(shift_right(features), text, layer)
            eps = torch.randn(prime.shape[1], n, self.config.latent_size, device=self.device, generator=generator)
            out = self.filter(prime, eps, state=(h, cell), e=e, ctx=ctx)
            (h, cell), pz = out["state"], out["pz"][:, -1]
            x_last, ctx_prev = features[:, -1], ctx[:, -1]
        return h, cell, pz, e, (layer, None, onehot, mask, x_last, ctx_prev)

    def _step_text(self, state, pending, options, generator):
        h, cell, pz, e, (layer, phi, onehot, mask, x_last, ctx_prev) = state
        if pending is not None:
            px = self.dropout(self.phi_x(cat_context(cat_condition(pending, e), ctx_prev)))
            gates = self.gates_x(px) + self.from_h(h)[:, self.config.phi_size :] + self.gates_z(pz)
            h, cell = self._cell(gates, cell)
            x_last = pending
        ctx, layer, phi = self.text_layer.step(x_last, layer, onehot, mask)
        h_c = self._with_text_h(self._with_condition_h(h, e), ctx)
        pz = self.phi_z(self.draw_latent(h_c, options, generator))
        return self._decode_params(pz, h_c), (h, cell, pz, e, (layer, phi, onehot, mask, x_last, ctx))

    def draw_latent(self, h: torch.Tensor, options, generator) -> torch.Tensor:
        """z_t from the prior p(z_t | h_{t-1}) (its mean at temperature 0)."""
        mu, logvar = self._prior(h)
        if options.temperature <= 0:
            return mu
        return mu + sampling_noise(mu.shape, generator=generator, device=mu.device) * torch.exp(0.5 * logvar)

    def step(self, state, pending, options, generator):
        """The generative half of the fused loop's step, on the same weights: the recurrence on the pending step
        and the last z, then z_t from the prior and the decoder's parameters."""
        if self.text_spec is not None:
            return self._step_text(state, pending, options, generator)
        h, cell, pz, e = state
        if pending is not None:
            px = self.dropout(self.phi_x(cat_condition(pending, e)))
            gates = self.gates_x(px) + self.from_h(h)[:, self.config.phi_size :] + self.gates_z(pz)
            h, cell = self._cell(gates, cell)
        h_c = self._with_condition_h(h, e)
        pz = self.phi_z(self.draw_latent(h_c, options, generator))
        return self._decode_params(pz, h_c), (h, cell, pz, e)
