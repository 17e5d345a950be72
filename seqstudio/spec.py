"""FeatureSpec: the contract between codecs and backends.

A codec says *what* its tensors hold (an ordered list of typed parts); backends build their input layers and
output heads from that description alone, which is why no backend ever needs to know the domain.

Two layouts exist for the same data:

* **storage layout** — what ``Codec.encode`` returns and what batches carry: ``Binary(n)`` is ``n`` columns of
  0/1, ``Categorical(n)`` is ONE column holding the class index (as a float), ``Real(n)`` is ``n`` columns of
  real values. Compact, so caches and batches of large vocabularies stay small.
* **feature layout** — what a network reads: the same, except categorical indices are expanded to one-hot.
  ``FeatureSpec.to_features`` converts, on whatever device the batch is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Union

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where features are built: reading a spec (the cache, `info`) needs no torch
    import torch


@dataclass(frozen=True)
class PartType:
    """Base of the part types: ``size`` values per step, stored as they are (subclasses change what differs).

    A new part type is a subclass registered in ``PART_TYPES`` (its ``spec.json`` name) plus its head in
    ``heads.PART_HEADS``.
    """

    size: int

    @property
    def storage_width(self) -> int:
        return self.size

    @property
    def feature_width(self) -> int:
        return self.size

    def to_features(self, values: torch.Tensor) -> torch.Tensor:
        """This part's storage columns ``[..., storage_width]`` -> feature layout ``[..., feature_width]``."""
        import torch

        return values.to(torch.float32)


@dataclass(frozen=True)
class Binary(PartType):
    """``size`` independent on/off bits per step (e.g. an 88-key piano-roll frame)."""


@dataclass(frozen=True)
class Categorical(PartType):
    """One choice among ``size`` classes per step (a token, a pen state): one index column, one-hot features."""

    @property
    def storage_width(self) -> int:
        return 1

    def to_features(self, values: torch.Tensor) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        index = values[..., 0].long().clamp(0, self.size - 1)
        return F.one_hot(index, self.size).to(torch.float32)


@dataclass(frozen=True)
class Real(PartType):
    """``size`` real values per step (e.g. pen offsets dx, dy)."""


Part = Union[Binary, Categorical, Real]
PART_TYPES: dict[str, type[PartType]] = {"binary": Binary, "categorical": Categorical, "real": Real}


@dataclass(frozen=True)
class FeatureSpec:
    """An ordered tuple of parts; each step of a sequence is the concatenation of its parts."""

    parts: tuple

    def __init__(self, parts):
        parts = tuple(parts)
        if not parts:
            raise ValueError("a FeatureSpec needs at least one part")
        for part in parts:
            if type(part) not in PART_TYPES.values() or part.size < 1:
                raise ValueError(f"invalid FeatureSpec part: {part!r}")
        object.__setattr__(self, "parts", parts)

    @property
    def storage_width(self) -> int:
        return sum(p.storage_width for p in self.parts)

    @property
    def feature_width(self) -> int:
        return sum(p.feature_width for p in self.parts)

    def storage_slices(self) -> Iterator[tuple[Part, slice]]:
        """Yield each part with the columns it occupies in the storage layout."""
        start = 0
        for part in self.parts:
            yield part, slice(start, start + part.storage_width)
            start += part.storage_width

    def to_features(self, x: torch.Tensor) -> torch.Tensor:
        """Storage layout ``[..., storage_width]`` -> feature layout ``[..., feature_width]`` (float)."""
        import torch

        pieces = [part.to_features(x[..., cols]) for part, cols in self.storage_slices()]
        return torch.cat(pieces, dim=-1) if len(pieces) > 1 else pieces[0]

    def to_dict(self) -> list[dict]:
        return [{"type": type(p).__name__.lower(), "size": p.size} for p in self.parts]

    @classmethod
    def from_dict(cls, items: list[dict]) -> "FeatureSpec":
        return cls(PART_TYPES[item["type"]](int(item["size"])) for item in items)

    def __str__(self) -> str:
        return "[" + ", ".join(f"{type(p).__name__}({p.size})" for p in self.parts) + "]"


def check_informative(spec: FeatureSpec, codec_name: str) -> None:
    """Refuse a part that carries no information: a ``Categorical(1)`` has one possible value, so a model of it
    learns nothing (loss 0.000) and every sample is that one value. It is what a codec that learns a vocabulary
    describes before it is fitted; seen at training time, the codec broke the fit contract (``needs_fit = True``
    and an empty ``state_dict()`` until ``fit``), so the loader never fitted it. ``Binary(1)`` and ``Real(1)``
    are fine (a bit, a value)."""
    from .errors import PluginError

    for part in spec.parts:
        if isinstance(part, Categorical) and part.size == 1:
            raise PluginError(f"codec {codec_name!r} describes its data as {spec}: a Categorical(1) part carries "
                              f"no information (one possible value), so nothing could be learned. A codec that "
                              f"learns from data must declare needs_fit = True and return an empty state_dict() "
                              f"until fit() (the fit contract, docs/writing-plugins.md)")
