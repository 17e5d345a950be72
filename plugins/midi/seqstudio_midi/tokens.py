"""The vocabulary both MIDI token codecs share: consecutive blocks of token kinds on the step grid.

The event codec (``ON | OFF | SHIFT | VELOCITY``) and the note codec (``PITCH | DURATION | SHIFT``) lay their
tokens out the same way: a few blocks side by side, the first of them indexed by pitch, so a transposition is an
offset inside those blocks and every index names one kind of token. ``TokenBlocks`` holds that layout once: each
codec lists its blocks, and the bases, the vocabulary size, the token names, the time shifts and the transposition
follow from the list.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from seqstudio.spec import Categorical, FeatureSpec

from .grid import GridConfig

if TYPE_CHECKING:  # torch is imported inside the methods that need it (encoding workers never do)
    import torch


@dataclasses.dataclass(frozen=True)
class Block:
    """One kind of token: its name's prefix and the label after it, one token per label. ``pitched`` blocks
    hold one token per pitch of the codec's range, and a transposition moves their tokens."""

    prefix: str
    labels: tuple[int, ...]
    pitched: bool = False


class TokenBlocks:
    """Mixed into a token codec that defines ``blocks()``; one categorical token per step, stored as its index in a
    single float column. The pitched blocks come first."""

    config: GridConfig

    def blocks(self) -> tuple[Block, ...]:
        raise NotImplementedError

    def pitch_block(self, prefix: str) -> Block:
        """A block with one token per pitch of the codec's range."""
        return Block(prefix, tuple(range(self.config.pitch_low, self.config.pitch_high + 1)), pitched=True)

    def base(self, prefix: str) -> int:
        """The index of the first token of the block named ``prefix``."""
        start = 0
        for block in self.blocks():
            if block.prefix == prefix:
                return start
            start += len(block.labels)
        raise KeyError(prefix)

    @property
    def vocab_size(self) -> int:
        return sum(len(block.labels) for block in self.blocks())

    @property
    def spec(self) -> FeatureSpec:
        return FeatureSpec([Categorical(self.vocab_size)])

    def token_names(self) -> list[str]:
        """Readable name of every token index: the block's prefix and the label, e.g. ``P60``, ``SHIFT2``."""
        return [f"{block.prefix}{label}" for block in self.blocks() for label in block.labels]

    def shifts(self, gap: int) -> list[int]:
        """SHIFT tokens (labels 1..max_shift steps) covering ``gap`` steps, longest first."""
        base, longest = self.base("SHIFT"), self.config.max_shift
        full, rest = divmod(gap, longest)
        tokens = [base + longest - 1] * full
        return tokens + [base + rest - 1] if rest else tokens

    def augment_with_change(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, int]:
        """Transpose by shifting the pitched blocks' indices, by a random amount that keeps every pitch in range."""
        import torch

        limit, n = self.config.transpose, self.config.n_pitches
        pitched = sum(1 for block in self.blocks() if block.pitched)
        tokens = x[:, 0].float().round().long()
        is_pitch = (tokens >= 0) & (tokens < pitched * n)
        if limit == 0 or not bool(is_pitch.any()):
            return x, (0 if limit else None)
        keys = tokens[is_pitch] % n
        low = max(-limit, -int(keys.min()))
        high = min(limit, n - 1 - int(keys.max()))
        k = int(torch.randint(low, high + 1, (1,), generator=generator))
        out = x.clone()
        out[is_pitch, 0] += k
        return out, k
