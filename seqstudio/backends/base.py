"""The Backend contract: what every generator family implements, what it may declare, and what it is lent.

Callers never probe a backend (no ``hasattr``, no catching NotImplementedError): what a family can do is
declared in the class attributes below, and everything else is one of these methods.

Must implement:
    ``Config``                  a dataclass of the family's options (``--set backend.KEY=VALUE``)
    ``__init__(spec, config)``  build input layers from ``spec.feature_width`` and heads with ``heads.build_head``
    ``loss(batch, step=None)``  ``(scalar to minimise, stats)``; ``step`` is the optimisation step (annealing
                                schedules read it), ``None`` outside training (schedules at their final value)
    ``sample(n, options, generator)``  ``n`` sequences, storage layout ``[n, T, spec.storage_width]``

May override:
    ``training_step``   one update (default: backward on ``loss`` through ``ctx.forward``; a GAN alternates)
    ``configure_optimizers``, ``evaluate_batch`` (held-out stats, default: ``loss``'s), ``summarize``,
    ``validation_score`` (lower is better; picks best.pt), ``init_from_data``, ``interpolate``
    ``tiny_config``     the smallest sensible configuration, used by the test matrix (timm style)

May declare (class attributes): ``has_likelihood``, ``can_interpolate``, ``evaluate_options``,
``ddp_find_unused_parameters``, ``accepts_conditions``, ``can_infill`` (with ``infill``).

Conditions (``seqstudio.conditions``): a family that declares ``accepts_conditions`` takes
``__init__(spec, config, conditions=None)`` and passes ``conditions`` on to ``Backend.__init__``, which builds
``self.condition_embedding``; it then reads ``self.condition_vector(batch.get("condition"), n)`` (``[n,
condition_size]``, or None for an unconditional run) in ``loss`` and ``self.condition_vector(options.condition,
n)`` when sampling, and never the meaning of a condition. Families that do not declare it are refused a
conditional run with one clear line.

The trainer calls ``configure_optimizers`` once, ``training_step`` for every batch with a ``StepContext`` (the
forward to use, the step, the process's place under DDP), ``evaluate_batch`` on the validation split and
``summarize`` / ``validation_score`` on the summed stats. It never writes into the backend.

Shared pieces, so a family writes only what is its own: ``autoregressive.py`` (``AutoregressiveBackend``: the
prime-then-loop sampler driven by the family's ``step``; teacher forcing's ``shift_right``; the likelihood stats;
an LSTM state from a vector) and ``latent.py`` (``LatentBackend``: the KL schedule, free bits, the ELBO report;
``ImportanceWeighted``: ``--iw-samples``).

Statistics convention: stats are *sums* over the batch as detached tensors (no ``.item()``, so no host sync per
step) and always a ``"steps"`` count. Sums are added across batches (and processes) and divided once, by
``summarize``; a key ``foo_num`` pairs with ``foo_den`` into a ratio ``foo``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, ClassVar

import torch
import torch.nn as nn

from ..distributed import DistInfo
from ..errors import ConfigError
from ..spec import FeatureSpec


@dataclasses.dataclass(frozen=True)
class StepContext:
    """What the trainer lends a backend for one optimisation step."""

    forward: Callable[..., Any]  # the (possibly DDP-wrapped) module's __call__: use it, not self.loss
    clip_grad_norm: float
    step: int = 0  # the optimisation step being taken (0-based; schedules such as KL warm-up read it)
    dist: DistInfo = DistInfo()  # rank / world size, and the all-reduce a backend may need (rank 0 logs)


@dataclasses.dataclass(frozen=True)
class SamplingOptions:
    """How to sample, as one value passed from the CLI through the API to ``Backend.sample`` and its heads.

    New sampling controls (top-k, a condition) become fields here, so no signature changes on the way down.
    """

    length: int = 64  # steps to generate after the prime
    temperature: float = 1.0  # 0 = the most likely value at every step
    bias: float = 0.0  # Graves' (2013) sampling bias for mixture parts: larger = likelier, neater strokes
    prime: torch.Tensor | None = None  # [1 or n, T0, storage_width]: kept verbatim, generation continues it
    condition: torch.Tensor | None = None  # [1 or n, A] attribute indices (seqstudio.conditions); None = unknown
    text: torch.Tensor | None = None  # [1 or n, U] symbol ids, 0 = padding (seqstudio.text_condition)
    # Truncated sampling of categorical values and binary keys (NADE or factorized; heads.truncate_logits): keep the
    # top_k likeliest values (0 = all), then the nucleus holding top_p of the mass (1 = all). Off by default.
    top_k: int = 0
    top_p: float = 1.0
    # Classifier-free guidance (seqstudio.guidance): 1 = plain conditional sampling, 0 = the unconditional model
    # inside a run trained with condition dropout, > 1 = follow the condition more strongly.
    guidance: float = 1.0

    def __post_init__(self):
        if self.length < 1:
            raise ConfigError(f"the length to generate must be at least 1, got {self.length}")
        if self.temperature < 0:
            raise ConfigError(f"--temperature must be >= 0, got {self.temperature}")
        if self.bias < 0:
            raise ConfigError(f"--bias must be >= 0, got {self.bias}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ConfigError(f"--top-k must be a whole number >= 0 (0 = off), got {self.top_k!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"--top-p must be in (0, 1] (1 = off), got {self.top_p!r}")
        if not self.guidance >= 0 or self.guidance == float("inf"):
            raise ConfigError(f"--guidance must be a finite number >= 0 (1 = plain conditional), got {self.guidance!r}")

    @property
    def truncation(self) -> dict:
        """``top_k`` / ``top_p`` as keywords for ``OutputHead.sample``; none when both are off, so plain sampling
        makes the very call it made before they existed."""
        return {} if (self.top_k, self.top_p) == (0, 1.0) else {"top_k": self.top_k, "top_p": self.top_p}


def check_positive(config, names) -> None:
    """Config validation shared by the families: each of ``names`` must be a count of at least 1."""
    for name in names:
        if getattr(config, name) < 1:
            raise ConfigError(f"backend.{name} must be >= 1, got {getattr(config, name)}")


def check_in_range(config, name: str, low: float, high: float) -> None:
    """``low <= config.NAME < high``, or a ConfigError saying so."""
    value = getattr(config, name)
    if not low <= value < high:
        raise ConfigError(f"backend.{name} must be in [{low:g}, {high:g}), got {value}")


class Backend(nn.Module):
    name: ClassVar[str] = "backend"
    description: ClassVar[str] = ""
    Config: ClassVar[type] = object

    # -- declared capabilities ----------------------------------------------------------------------------------
    # False for families with no likelihood to report (GANs): `evaluate` then judges them by samples only.
    has_likelihood: ClassVar[bool] = True
    # True when ``interpolate`` is implemented (a family with a per-sequence latent space).
    can_interpolate: ClassVar[bool] = False
    # Keyword options ``evaluate_batch`` accepts (e.g. ``iw_samples``); others are refused before evaluating.
    evaluate_options: ClassVar[tuple[str, ...]] = ()
    # True when some updates leave parameters unused (a GAN's discriminator step): DDP must then look for them.
    ddp_find_unused_parameters: ClassVar[bool] = False
    # True when the family consumes a condition embedding (``__init__`` takes ``conditions``); see above.
    accepts_conditions: ClassVar[bool] = False
    # True when the family takes a sequence condition (``__init__`` takes ``text``, a text_condition.TextSpec;
    # ``loss`` reads batch["text"] / batch["text_mask"], sampling ``options.text``, and ``sample_lines`` gives
    # each sample's length, cut where the attention window passed the text's end). Others are refused one.
    accepts_text: ClassVar[bool] = False
    # True when ``sample`` honours ``options.guidance`` (classifier-free guidance, ``seqstudio.guidance``): every
    # ``AutoregressiveBackend`` does through its step; a family with a sampler of its own declares it when it
    # does. ``generate`` refuses a guidance scale other than 1 to the others, in one line.
    guides: ClassVar[bool] = False
    # True when ``infill`` is implemented: the family fills masked (step, part) positions of a tensor given all the
    # others, before and after (``seqstudio.infill``: harmonising a melody, regenerating bars). The others are
    # refused ``generate --harmonize / --infill`` in one line that names what to train instead.
    can_infill: ClassVar[bool] = False

    def __init__(self, spec: FeatureSpec, config, conditions=None, text=None):
        super().__init__()
        self.spec = spec
        self.config = config
        self.conditions = conditions  # a seqstudio.conditions.ConditionSpec, or None
        self.text_spec = text  # a seqstudio.text_condition.TextSpec, or None
        if conditions is not None:
            from ..conditions import ConditionEmbedding

            self.condition_embedding = ConditionEmbedding(conditions)

    # -- conditions ---------------------------------------------------------------------------------------------
    @property
    def condition_size(self) -> int:
        """Width of ``condition_vector`` (0 for an unconditional model): what input layers add for it."""
        return self.conditions.size if self.conditions is not None else 0

    def condition_indices(self, index: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """``[n, A]`` long indices on this backend's device ("unknown" where none are given), or None."""
        if self.conditions is None:
            return None
        if index is None:
            return torch.zeros(n, len(self.conditions.attributes), dtype=torch.long, device=self.device)
        index = index.to(self.device).long()
        return index.expand(n, -1) if index.shape[0] == 1 and n != 1 else index

    def condition_vector(self, index: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """The condition embedding ``[n, condition_size]`` (condition dropout applied in training mode), or None
        for an unconditional model."""
        index = self.condition_indices(index, n)
        return None if index is None else self.condition_embedding(index)

    @classmethod
    def tiny_config(cls):
        """A configuration small enough for the test matrix to train in a fraction of a second."""
        return cls.Config()

    # -- training ----------------------------------------------------------------------------------------------
    def forward(self, batch: dict, **kwargs):
        return self.loss(batch, **kwargs)

    def loss(self, batch: dict, step: int | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def configure_optimizers(self, lr: float, weight_decay: float = 0.0) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.parameters(), lr=lr, weight_decay=weight_decay)]

    def training_step(self, batch: dict, optimizers: list[torch.optim.Optimizer], ctx: StepContext):
        """One update. Returns the batch's stats (sums, detached)."""
        (optimizer,) = optimizers
        optimizer.zero_grad(set_to_none=True)
        loss, stats = ctx.forward(batch, step=ctx.step)
        loss.backward()
        if ctx.clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.parameters(), ctx.clip_grad_norm)
        optimizer.step()
        return stats

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, mask: torch.Tensor) -> None:
        """Called once before training from scratch with (a sample of) the training windows: every output
        head starts at the data's marginal distribution (see ``OutputHead.init_bias_from_data``)."""
        from ..heads import OutputHead

        for module in self.modules():
            if isinstance(module, OutputHead):
                module.init_bias_from_data(x, mask)

    # -- evaluation ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate_batch(self, batch: dict, **options) -> dict[str, torch.Tensor]:
        """Held-out statistics (sums) for one batch; defaults to the training loss's stats.

        ``options`` are the backend's declared ``evaluate_options``; callers check them with ``check_options``.
        """
        self.check_evaluate_options(options)
        return self.loss(batch)[1]

    @classmethod
    def check_evaluate_options(cls, options: dict) -> None:
        unknown = sorted(set(options) - set(cls.evaluate_options))
        if unknown:
            valid = f" (valid: {', '.join(cls.evaluate_options)})" if cls.evaluate_options else ""
            raise ConfigError(f"backend {cls.name!r} does not support evaluation options: "
                              f"{', '.join(unknown)}{valid}")

    def summarize(self, stats: dict[str, float]) -> dict[str, float]:
        """Turn summed stats into per-step figures (nats per step) and ratios."""
        steps = max(float(stats.get("steps", 1.0)), 1.0)
        out = {}
        for key, value in stats.items():
            value = float(value)
            if key in ("steps", "sequences") or key.endswith("_den"):
                continue
            if key.endswith("_num"):
                den = float(stats.get(key[:-4] + "_den", 0.0))
                out[key[:-4]] = value / den if den else float("nan")
            else:
                out[key] = value / steps
        return out

    def validation_score(self, summary: dict[str, float]) -> float:
        """Lower is better; picks ``best.pt`` and drives early stopping (default: negative ELBO per step)."""
        return summary.get("nll", math.inf) + summary.get("kl", 0.0)

    # -- generation ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, options: SamplingOptions = SamplingOptions(),
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` sequences in storage layout, ``[n, T0 + options.length, spec.storage_width]``: the prime (if any,
        unchanged) followed by ``options.length`` generated steps."""
        raise NotImplementedError

    @torch.no_grad()
    def infill(self, x: torch.Tensor, known: torch.Tensor, options: SamplingOptions = SamplingOptions(),
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``x`` (``[n, T, storage_width]``) with the positions where ``known`` (bool ``[n, T, len(spec.parts)]``)
        is False drawn given all the known ones; known positions come back unchanged. Only for families that
        declare ``can_infill``."""
        raise ConfigError(f"backend {self.name!r} cannot fill masked positions")

    @torch.no_grad()
    def infill_nll(self, x: torch.Tensor, known: torch.Tensor, generator: torch.Generator | None = None
                   ) -> torch.Tensor:
        """``-log p(x at the unknown positions | the known ones)`` per sequence ``[n]``, in nats (families that
        declare ``can_infill``)."""
        raise ConfigError(f"backend {self.name!r} cannot fill masked positions")

    @torch.no_grad()
    def interpolate(self, a: torch.Tensor, b: torch.Tensor, points: int, options: SamplingOptions = SamplingOptions(),
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """``points`` sequences along the latent path from ``a`` to ``b`` (``[T, D]`` each); only for families
        that declare ``can_interpolate``."""
        raise ConfigError(f"backend {self.name!r} has no latent space to interpolate in")

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
