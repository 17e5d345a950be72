"""Subword codec: byte-level BPE trained with Hugging Face ``tokenizers`` on the training text.

The tokenizer works on UTF-8 bytes (GPT-2 style): every byte is in its base alphabet, so any text — including
characters never seen in training — encodes, and decodes back to exactly itself; there is no unknown token.
Merges never cross a newline into the next line's text, so line starts are token starts.

Index 0 is ``<eos>``; the tokenizer's own ids follow, shifted by one. The trained tokenizer is stored in the
codec state (``Tokenizer.to_str()``), so a run directory is self-contained.
"""

from __future__ import annotations

import dataclasses

from seqstudio.errors import ConfigError

from .codec import TextCodec, TextCodecConfig

SHIFT = 1  # tokenizer id i is codec index i + 1; 0 is <eos>


class BPECodec(TextCodec):
    name = "bpe"

    @dataclasses.dataclass
    class Config(TextCodecConfig):
        """``vocab_size``: tokenizer vocabulary including its 256 byte tokens (the model sees one more, for
        ``<eos>``); ``min_frequency``: pairs seen fewer times are not merged. ``window`` counts tokens."""

        window: int = 128
        vocab_size: int = 512
        min_frequency: int = 2

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.vocab_size < 257:
                raise ConfigError(f"codec.vocab_size must be >= 257 (256 byte tokens + merges), "
                                  f"got {self.vocab_size}")
            if self.min_frequency < 1:
                raise ConfigError(f"codec.min_frequency must be >= 1, got {self.min_frequency}")

    def __init__(self, config=None):
        super().__init__(config)
        self.tokenizer = None

    @property
    def fitted(self) -> bool:
        return self.tokenizer is not None

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size() + SHIFT

    @staticmethod
    def _new_tokenizer():
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tokenizer.decoder = decoders.ByteLevel()
        return tokenizer

    def fit(self, samples: list) -> None:
        from tokenizers import pre_tokenizers, trainers

        tokenizer = self._new_tokenizer()
        trainer = trainers.BpeTrainer(vocab_size=self.config.vocab_size, min_frequency=self.config.min_frequency,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tokenizer.train_from_iterator((str(s) for s in samples), trainer=trainer, length=len(samples))
        self.tokenizer = tokenizer
        self._fit_format(samples)

    def state_dict(self) -> dict:
        return {"tokenizer": self.tokenizer.to_str(), "format": self.format} if self.fitted else {}

    def load_state_dict(self, state: dict) -> None:
        from tokenizers import Tokenizer

        if not state:
            return
        try:
            self.tokenizer = Tokenizer.from_str(state["tokenizer"])
        except Exception as exc:
            raise ConfigError(f"the stored BPE tokenizer cannot be loaded ({exc})") from None
        self.format = state.get("format", "text")
        self._texts = None

    def _token_texts(self) -> list[str]:
        return [""] + [self.tokenizer.decode([i]) for i in range(self.tokenizer.get_vocab_size())]

    def encode_text(self, text: str) -> list[int]:
        return [i + SHIFT for i in self.tokenizer.encode(text, add_special_tokens=False).ids]

    def decode_ids(self, ids: list[int]) -> str:
        return self.tokenizer.decode([i - SHIFT for i in ids], skip_special_tokens=False)
