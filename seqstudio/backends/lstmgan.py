"""LSTM-GAN (C-RNN-GAN, Mogren 2016): an LSTM generator driven by per-step noise, a bidirectional LSTM critic.

Generator: at every step an LSTM reads fresh noise and its own previous output, and the FeatureSpec's output
head turns its state into the step's parameters. During adversarial training the output is *relaxed*
(``OutputHead.relaxed``): by default a straight-through Gumbel / binary-concrete sample, so the discriminator
sees hard 0/1 and one-hot values exactly like real data while its gradient still reaches the generator. At
generation time the same head draws ordinary samples (``OutputHead.sample``); at temperature 1 these have
exactly the distribution of the hard relaxed samples seen in training.

Discriminator: a bidirectional LSTM over the whole sequence (feature layout: real data through
``spec.to_features``), with a decision per step (averaged, as in C-RNN-GAN) or on the mean-pooled states.

Stabilisers, each a config switch: feature matching on the discriminator's last layer, optional MLE
(teacher-forced) pretraining of the generator and an optional MLE term during adversarial training, freezing
whichever side is too far ahead, one-sided label smoothing; a warning when the discriminator wins outright or
the samples of a batch collapse onto each other.

GANs have no likelihood, so validation reports a data-space statistic that does not depend on the moving
discriminator (``gap``: how far the generated per-feature activation rates and change rates are from the real
ones) plus the discriminator's accuracy and the feature-matching distance; ``gap`` picks ``best.pt``.
"""

from __future__ import annotations

import dataclasses
import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..heads import build_head
from ..guidance import sampling_noise
from .autoregressive import AutoregressiveBackend, LSTMStateFromVector, cat_condition, likelihood_stats, shift_right
from .base import check_in_range, check_positive

log = logging.getLogger("seqstudio")
RELAXATIONS = ("st-gumbel", "gumbel", "soft")


@dataclasses.dataclass
class LSTMGANConfig:
    noise_size: int = 32  # per-step noise (and the per-sequence noise that sets the initial state)
    generator_size: int = 256
    generator_layers: int = 1
    discriminator_size: int = 128  # per direction
    discriminator_layers: int = 1
    decision: str = "step"  # step: one decision per step, averaged (C-RNN-GAN) | pooled: on mean-pooled states
    relaxation: str = "st-gumbel"  # st-gumbel (hard forward, soft gradient) | gumbel (noisy soft) | soft
    tau: float = 1.0  # relaxation temperature
    feature_matching: float = 1.0  # weight of feature matching on D's last layer in G's loss (0 = off)
    adversarial: float = 1.0  # weight of the usual non-saturating adversarial term in G's loss
    pretrain_steps: int = 300  # MLE (teacher-forced) steps of the generator before adversarial training
    mle_weight: float = 0.0  # teacher-forced NLL per step kept in G's loss during adversarial training
    label_smoothing: float = 0.1  # one-sided: real targets are 1 - this; fake targets stay 0
    freeze_ratio: float = 0.7  # freeze D when its loss (per term) < ratio * G's, and G vice versa; 0 = off
    balance_every: int = 20  # steps between freezing decisions (each costs one host sync)
    d_lr_scale: float = 1.0  # discriminator learning rate = train.lr * this
    check_every: int = 50  # steps between the collapse / discriminator-wins checks
    collapse_threshold: float = 0.1  # warn when fake diversity < this fraction of real diversity
    mixtures: int = 20  # Gaussian-mixture components for real-valued parts (e.g. pen offsets)

    def __post_init__(self):
        if self.decision not in ("step", "pooled"):
            raise ConfigError(f"backend.decision must be 'step' or 'pooled', got {self.decision!r}")
        if self.relaxation not in RELAXATIONS:
            raise ConfigError(f"backend.relaxation must be one of {', '.join(RELAXATIONS)}, got {self.relaxation!r}")
        check_positive(self, ("noise_size", "generator_size", "generator_layers", "discriminator_size",
                              "discriminator_layers", "balance_every", "check_every"))
        check_in_range(self, "label_smoothing", 0.0, 0.5)
        if self.tau <= 0:
            raise ConfigError(f"backend.tau must be positive, got {self.tau}")


class Discriminator(nn.Module):
    def __init__(self, width: int, c: LSTMGANConfig):
        super().__init__()
        self.decision = c.decision
        self.rnn = nn.LSTM(width, c.discriminator_size, num_layers=c.discriminator_layers, batch_first=True,
                           bidirectional=True)
        self.out = nn.Linear(2 * c.discriminator_size, 1)

    def forward(self, features, mask):
        """-> (one logit per sequence, masked mean of the last layer's states: the matched features)."""
        h, _ = self.rnn(features)
        m = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        if self.decision == "pooled":
            return self.out(pooled).squeeze(-1), pooled
        per_step = self.out(h).squeeze(-1)
        return (per_step * mask).sum(1) / mask.sum(1).clamp(min=1), pooled


class LSTMGAN(AutoregressiveBackend):
    name = "lstmgan"
    description = "LSTM-GAN (C-RNN-GAN): noise-driven LSTM generator vs bidirectional LSTM discriminator"
    Config = LSTMGANConfig
    has_likelihood = False
    ddp_find_unused_parameters = True  # the D step does not use G's parameters
    accepts_conditions = True

    def __init__(self, spec, config: LSTMGANConfig, conditions=None):
        super().__init__(spec, config, conditions)
        c = config
        width = spec.feature_width
        E = self.condition_size  # conditions: a conditional GAN, G (initial state, every step) and D both see c
        self.to_initial_state = LSTMStateFromVector(c.noise_size + E, c.generator_layers, c.generator_size)
        self.generator = nn.LSTM(c.noise_size + width + E, c.generator_size, num_layers=c.generator_layers,
                                 batch_first=True)
        self.head = build_head(spec, c.generator_size, c.mixtures)
        self.discriminator = Discriminator(width + E, c)
        if E:  # D's own table, trained by D's optimizer (self.condition_embedding is G's)
            from ..conditions import ConditionEmbedding

            self.d_condition_embedding = ConditionEmbedding(conditions)
        # Running sums for the freezing decisions and the warnings: tensors, so no host sync per step. Kept in
        # the state dict so a resumed run makes the same decisions.
        self.register_buffer("balance", torch.zeros(3))  # d_loss sum, g_adversarial sum, count
        self.register_buffer("frozen", torch.zeros(2))  # [D frozen, G frozen] as 0/1
        self.register_buffer("watch", torch.zeros(5))  # d_real prob, d_fake prob, count, fake div, real div
        self._warned = set()

    @classmethod
    def tiny_config(cls):
        # pretrain_steps=1: a two-step test run takes one MLE step, then one adversarial (D and G) step
        return cls.Config(noise_size=4, generator_size=16, discriminator_size=8, pretrain_steps=1, mixtures=3)

    def generator_parameters(self):
        extra = [*self.condition_embedding.parameters()] if self.conditions is not None else []
        return [*self.to_initial_state.parameters(), *self.generator.parameters(), *self.head.parameters(), *extra]

    def discriminator_parameters(self):
        extra = [*self.d_condition_embedding.parameters()] if self.conditions is not None else []
        return [*self.discriminator.parameters(), *extra]

    def _conditions(self, index, n):
        """(G's, D's) condition embeddings of one draw of condition dropout, or (None, None)."""
        index = self.condition_indices(index, n)
        if index is None:
            return None, None
        index = self.condition_embedding.drop(index)
        return self.condition_embedding.embed(index), self.d_condition_embedding.embed(index)

    def configure_optimizers(self, lr, weight_decay=0.0):
        betas = (0.5, 0.999)  # the usual GAN setting: less momentum keeps the two players from overshooting
        return [torch.optim.Adam(self.discriminator_parameters(), lr=lr * self.config.d_lr_scale, betas=betas,
                                 weight_decay=weight_decay),
                torch.optim.Adam(self.generator_parameters(), lr=lr, betas=betas, weight_decay=weight_decay)]

    # -- generator ------------------------------------------------------------------------------------------------
    def _initial_state(self, n, device, generator=None, e=None):
        z = sampling_noise((n, self.config.noise_size), generator=generator, device=device)
        return self.to_initial_state(cat_condition(z, e))

    def _advance(self, noise, previous, state, e=None):
        """One generator step, ``[B, 1, .]`` in and out: LSTM on [noise | previous step (| condition)], then the
        head's parameters. The one transition of adversarial training (relaxed previous steps) and of sampling
        (drawn ones)."""
        out, state = self.generator(cat_condition(torch.cat([noise, previous], dim=-1), e), state)
        return self.head(out), state

    def generate_relaxed(self, n: int, steps: int, e: torch.Tensor | None = None) -> torch.Tensor:
        """Free-running generator, differentiable: feature-layout ``[n, steps, feature_width]``."""
        c = self.config
        device = self.device
        noise = torch.randn(n, steps, c.noise_size, device=device)
        state = self._initial_state(n, device, e=e)
        previous = torch.zeros(n, 1, self.spec.feature_width, device=device)
        hard, add_noise = c.relaxation == "st-gumbel", c.relaxation != "soft"
        outputs = []
        for t in range(steps):
            params, state = self._advance(noise[:, t : t + 1], previous.to(noise.dtype), state, e)
            previous = self.head.relaxed(params, c.tau, hard=hard, noise=add_noise)
            outputs.append(previous)
        return torch.cat(outputs, dim=1)

    def teacher_forced_nll(self, x, mask, e=None):
        """Summed NLL of real ``x`` under the generator fed the real previous steps (MLE pretraining)."""
        shifted = shift_right(self.spec.to_features(x))
        noise = torch.randn(x.shape[0], x.shape[1], self.config.noise_size, device=x.device)
        out, _ = self.generator(cat_condition(torch.cat([noise, shifted], dim=-1), e),
                                self._initial_state(x.shape[0], x.device, e=e))
        params = self.head(out)
        return -(self.head.log_prob(params, x) * mask).sum(), params

    # -- the two players ------------------------------------------------------------------------------------------
    def forward(self, batch, mode: str = "eval", step: int | None = None):
        if mode == "mle":
            return self._mle(batch)
        if mode in ("d", "g", "eval"):
            return self._adversarial(batch, mode, step)
        raise ValueError(f"unknown LSTMGAN mode {mode!r}")

    def loss(self, batch, step=None):
        return self._adversarial(batch, "eval", step)

    def _mle(self, batch):
        x, mask = batch["x"], batch["mask"]
        e, _ = self._conditions(batch.get("condition"), x.shape[0])
        nll, params = self.teacher_forced_nll(x, mask, e)
        return nll / mask.sum().clamp(min=1), likelihood_stats(self.head, params, x, mask, nll)

    def _adversarial(self, batch, mode, step=None):
        c = self.config
        x, mask = batch["x"], batch["mask"]
        n, steps_t = x.shape[0], x.shape[1]
        m = mask.unsqueeze(-1)
        real = self.spec.to_features(x) * m
        e, e_d = self._conditions(batch.get("condition"), n)  # conditions: fakes are asked for the real ones'
        if mode == "g":
            fake = self.generate_relaxed(n, steps_t, e)
        else:
            with torch.no_grad():
                fake = self.generate_relaxed(n, steps_t, e)
        fake = fake * m  # the same padding as the real batch, so length is no tell
        real_logit, real_feat = self.discriminator(cat_condition(real, e_d), mask)
        fake_logit, fake_feat = self.discriminator(cat_condition(fake, e_d), mask)
        real_target = torch.full_like(real_logit, 1.0 - c.label_smoothing)
        d_loss = (F.binary_cross_entropy_with_logits(real_logit, real_target)
                  + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)))
        g_adv = F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))
        fm = (real_feat.detach().float().mean(0) - fake_feat.float().mean(0)).pow(2).sum()
        steps = mask.sum()
        nll = None
        if mode == "eval" or (mode == "g" and c.mle_weight > 0):
            nll, _ = self.teacher_forced_nll(x, mask, e)
        if mode == "d":
            loss = d_loss
        elif mode == "g":
            loss = c.adversarial * g_adv + c.feature_matching * fm
            if nll is not None:
                loss = loss + c.mle_weight * nll / steps.clamp(min=1)
        else:
            loss = g_adv
        one = torch.ones((), device=x.device)
        d_correct = (real_logit > 0).sum() + (fake_logit < 0).sum()
        stats = {"steps": steps.detach().float(),
                 "d_loss_num": d_loss.detach().float(), "d_loss_den": one,
                 "g_adv_num": g_adv.detach().float(), "g_adv_den": one,
                 "fm_num": fm.detach(), "fm_den": one,
                 "gap_num": _marginal_gap(real, fake.detach(), mask), "gap_den": one,
                 "d_accuracy_num": d_correct.detach().float(), "d_accuracy_den": one * 2 * n,
                 "d_real_num": torch.sigmoid(real_logit.detach().float()).sum(), "d_real_den": one * n,
                 "d_fake_num": torch.sigmoid(fake_logit.detach().float()).sum(), "d_fake_den": one * n}
        if nll is not None:
            stats["nll"] = nll.detach().float()
        if mode != "eval":
            with torch.no_grad():
                self.balance += torch.stack([d_loss.detach().float(), g_adv.detach().float(), one])
                self.watch[:3] += torch.stack([stats["d_real_num"] / n, stats["d_fake_num"] / n, one])
                if step is not None and step % c.check_every == 0:
                    self.watch[3] = _diversity(fake.detach(), n)
                    self.watch[4] = _diversity(real, n)
        return loss, stats

    # -- one optimisation step --------------------------------------------------------------------------------------
    def training_step(self, batch, optimizers, ctx):
        c = self.config
        opt_d, opt_g = optimizers
        step = ctx.step
        if step < c.pretrain_steps:
            return self._update(opt_g, self.generator_parameters(), ctx, batch, mode="mle")
        if step % c.balance_every == 0:
            self._decide_freezing(ctx.dist)
        d_frozen, g_frozen = self._frozen_flags
        stats = None
        if not d_frozen:
            stats = self._update(opt_d, self.discriminator_parameters(), ctx, batch, mode="d", step=step)
        if not g_frozen:
            stats = self._update(opt_g, self.generator_parameters(), ctx, batch, mode="g", step=step)
            opt_d.zero_grad(set_to_none=True)  # G's loss also reached D's weights; those gradients are not D's
        one = torch.ones((), device=batch["x"].device)
        stats.update(d_frozen_num=one * d_frozen, d_frozen_den=one, g_frozen_num=one * g_frozen, g_frozen_den=one)
        if (step + 1) % c.check_every == 0:
            self._check_health(step + 1, ctx.dist)
        return stats

    @staticmethod
    def _update(optimizer, params, ctx, batch, **forward_options):
        """One player's update: its loss through ``ctx.forward``, clipped to that player's parameters."""
        optimizer.zero_grad(set_to_none=True)
        loss, stats = ctx.forward(batch, **forward_options)
        loss.backward()
        if ctx.clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(list(params), ctx.clip_grad_norm)
        optimizer.step()
        return stats

    @property
    def _frozen_flags(self) -> tuple[bool, bool]:
        if not hasattr(self, "_flags"):
            self._flags = tuple(bool(v) for v in self.frozen.tolist())
        return self._flags

    def _decide_freezing(self, dist_info):
        """C-RNN-GAN's freezing: stop training the side whose loss is well below the other's (one host sync)."""
        c = self.config
        balance = dist_info.all_reduce_sum(self.balance.clone())
        self.balance.zero_()
        d_frozen = g_frozen = False
        if c.freeze_ratio > 0 and float(balance[2]) > 0:
            d_loss, g_adv = (balance[:2] / balance[2]).tolist()
            d_loss /= 2  # D's loss has a real and a fake term: at equilibrium it is 2 ln 2 while G's is ln 2
            d_frozen = d_loss < c.freeze_ratio * g_adv
            g_frozen = g_adv < c.freeze_ratio * d_loss
        self.frozen.copy_(torch.tensor([float(d_frozen), float(g_frozen)]))
        self._flags = (d_frozen, g_frozen)

    def _check_health(self, step, dist_info):
        """Warn (rank 0, at most once per check) when D wins outright or the samples collapse."""
        c = self.config
        d_real, d_fake, count, fake_div, real_div = self.watch.tolist()
        self.watch[:3].zero_()
        if not dist_info.is_main:
            return
        if count > 0 and d_fake / count < 0.02 and d_real / count > 0.8:
            log.warning("lstmgan step %d: the discriminator wins outright (mean D(fake) %.3f, D(real) %.3f); "
                        "the generator gets little gradient. Try --set backend.freeze_ratio=0.9, a smaller "
                        "backend.d_lr_scale or more backend.feature_matching.", step, d_fake / count, d_real / count)
        if real_div > 0 and fake_div < c.collapse_threshold * real_div:
            log.warning("lstmgan step %d: samples collapse (a batch's samples are nearly identical: diversity "
                        "%.4f vs %.4f for real data). Try backend.pretrain_steps, backend.mle_weight or a lower "
                        "learning rate.", step, fake_div, real_div)

    # -- evaluation ----------------------------------------------------------------------------------------------------
    def validation_score(self, summary):
        """Lower is better: the data-space gap (independent of the ever-changing discriminator)."""
        for key in ("gap", "fm", "nll"):
            if key in summary:
                return summary[key]
        return float("inf")

    # -- generation ----------------------------------------------------------------------------------------------------
    def start(self, n, prime, options, generator):
        e = self.condition_vector(options.condition, n)
        state = self._initial_state(n, self.device, generator, e)
        if prime is None:
            return (state, e), torch.zeros(n, self.spec.feature_width, device=self.device)
        features = self.spec.to_features(prime)
        noise = sampling_noise((n, prime.shape[1], self.config.noise_size), generator=generator, device=self.device)
        _, state = self.generator(cat_condition(torch.cat([noise, shift_right(features)], dim=-1), e),
                                  state)  # all but the last
        return (state, e), features[:, -1]

    def step(self, state, pending, options, generator):
        state, e = state
        noise = sampling_noise((pending.shape[0], 1, self.config.noise_size), generator=generator,
                               device=pending.device)
        params, state = self._advance(noise, pending.unsqueeze(1), state, e)
        return params[:, 0], (state, e)


def _marginal_gap(real, fake, mask):
    """L1 distance between real and generated per-feature activation rates and change rates (feature layout)."""
    m = mask.unsqueeze(-1).to(real.dtype)
    steps = m.sum().clamp(min=1)
    rate = ((real - fake.to(real.dtype)) * m).sum((0, 1)) / steps
    pair = (m[:, 1:] * m[:, :-1])
    change_real = ((real[:, 1:] - real[:, :-1]).abs() * pair).sum((0, 1))
    change_fake = ((fake[:, 1:] - fake[:, :-1]).abs().to(real.dtype) * pair).sum((0, 1))
    change = (change_real - change_fake) / pair.sum().clamp(min=1)
    return (rate.abs().sum() + change.abs().sum()).detach().float()


def _diversity(features, n):
    """Mean L1 distance between the samples of a batch, per step (0 when all are identical)."""
    if n < 2:
        return features.new_zeros(()).float()
    flat = features.reshape(n, -1).float()
    return torch.cdist(flat, flat, p=1).sum() / (n * (n - 1)) / max(features.shape[1], 1)
