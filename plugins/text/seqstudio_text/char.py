"""Character codec: one token per character, the vocabulary fitted on the training text.

Indices: 0 ``<eos>``, 1 ``<unk>`` (a character not seen in training, or seen fewer than ``min_count`` times;
it decodes to U+FFFD), then the vocabulary's characters in code-point order. Every in-vocabulary text decodes to
exactly itself.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from seqstudio.errors import ConfigError

from .codec import TextCodec, TextCodecConfig

UNK = 1
UNK_TEXT = "\ufffd"
SPECIALS = 2


class CharCodec(TextCodec):
    name = "char"
    unknown_token = UNK  # characters outside the fitted vocabulary (Codec.unknown_token)

    @dataclasses.dataclass
    class Config(TextCodecConfig):
        """``min_count``: characters seen fewer times than this in the training text become ``<unk>``."""

        window: int = 256
        min_count: int = 1

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.min_count < 1:
                raise ConfigError(f"codec.min_count must be >= 1, got {self.min_count}")

    def __init__(self, config=None):
        super().__init__(config)
        self.chars: list[str] = []
        self._index: dict[str, int] = {}

    @property
    def fitted(self) -> bool:
        return bool(self.chars)

    @property
    def vocab_size(self) -> int:
        return SPECIALS + len(self.chars)

    def fit(self, samples: list) -> None:
        counts = Counter()
        for text in samples:
            counts.update(str(text))
        chars = sorted(c for c, n in counts.items() if n >= self.config.min_count)
        if not chars:
            raise ConfigError(f"no character occurs {self.config.min_count} times in the training text")
        self._set_chars(chars)
        self._fit_format(samples)

    def _set_chars(self, chars: list[str]) -> None:
        self.chars = list(chars)
        self._index = {c: i + SPECIALS for i, c in enumerate(self.chars)}
        self._texts = None

    def state_dict(self) -> dict:
        return {"chars": self.chars, "format": self.format} if self.fitted else {}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            return
        self._set_chars(state["chars"])
        self.format = state.get("format", "text")

    def _token_texts(self) -> list[str]:
        return ["", UNK_TEXT, *self.chars]

    def encode_text(self, text: str) -> list[int]:
        index = self._index
        return [index.get(c, UNK) for c in text]

    def decode_ids(self, ids: list[int]) -> str:
        texts = self._token_texts()
        return "".join(texts[i] for i in ids)
