"""What the character and BPE codecs share: token 0 ends a document, and windows are cut on line boundaries.

Token layout: index 0 is ``<eos>``, the end of a document. ``encode`` gives a document's tokens *without* it
(so a ``--prime`` file is continued rather than ended); ``windows`` appends it to the document's last window,
so models learn where a tune or text ends, and ``decode`` stops at the first one.

Windows: a document that fits the window (with its ``<eos>``) is one window — with the default windows that is
almost every folk tune, learned whole from its header on. A longer one is cut at paragraph or line starts, and a
piece of an ABC tune's body gets the tune's header in front (``seqstudio_text.windows``).
"""

from __future__ import annotations

import dataclasses

import torch

from seqstudio.domain import Codec, CodecConfig
from seqstudio.errors import ConfigError
from seqstudio.spec import Categorical, FeatureSpec

from .document import Document
from .windows import plan_windows

EOS = 0


@dataclasses.dataclass
class TextCodecConfig(CodecConfig):
    """``window``: tokens per training window (0 = whole documents), also the default generation length.
    ``hop`` does not apply to text: windows never overlap."""

    window: int = 256

    def __post_init__(self) -> None:
        if self.window < 0:
            raise ConfigError(f"codec.window must be >= 0, got {self.window}")
        if self.hop:
            raise ConfigError("codec.hop does not apply to text codecs (leave it at 0)")


class TextCodec(Codec):
    """Base of the text codecs: subclasses provide the vocabulary (``_token_texts``) and the conversions."""

    needs_fit = True
    config: TextCodecConfig

    def __init__(self, config=None):
        super().__init__(config)
        self.format = "text"  # "abc" when every training document was an ABC tune
        self._texts: list[str] | None = None  # _token_texts(), cached; reset when the vocabulary changes

    # -- subclass interface ---------------------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        """Including ``<eos>``."""
        raise NotImplementedError

    def _token_texts(self) -> list[str]:
        """The text of every token index (``""`` for ``<eos>``), used to find line boundaries."""
        raise NotImplementedError

    def encode_text(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode_ids(self, ids: list[int]) -> str:
        """Text of token ids that hold no ``<eos>``."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------------------------------
    def _require_fit(self) -> None:
        if not self.fitted:
            raise ConfigError(f"the {self.name} codec has no vocabulary yet: fit it on training text first")

    @property
    def spec(self) -> FeatureSpec:
        self._require_fit()
        return FeatureSpec([Categorical(self.vocab_size)])

    def _fit_format(self, samples: list) -> None:
        self.format = "abc" if samples and all(getattr(s, "format", "") == "abc" for s in samples) else "text"
        self._texts = None

    def encode(self, sample: str) -> torch.Tensor:
        self._require_fit()
        ids = self.encode_text(str(sample))
        return torch.tensor(ids, dtype=torch.float32).reshape(-1, 1)

    def decode(self, x: torch.Tensor) -> Document:
        """Text of the tokens up to the first ``<eos>`` (anything a model generates decodes)."""
        self._require_fit()
        ids = x[:, 0].round().long().clamp(0, self.vocab_size - 1).tolist() if x.numel() else []
        if EOS in ids:
            ids = ids[: ids.index(EOS)]
        return Document(self.decode_ids(ids), self.format)

    def windows(self, x: torch.Tensor) -> list[torch.Tensor]:
        y = torch.cat([x, torch.full((1, x.shape[1]), float(EOS))])  # encode never gives <eos> itself
        window = self.window_length
        if window <= 0 or y.shape[0] <= window:
            spans = [(0, y.shape[0], None)]
        else:
            if self._texts is None:
                self._texts = self._token_texts()
            texts = self._texts
            ids = y[:, 0].long().clamp(0, len(texts) - 1).tolist()
            spans = plan_windows([texts[i] for i in ids], window, abc=self.format == "abc")
        out = [y[a:b] if header is None else torch.cat([y[header[0]:header[1]], y[a:b]]) for a, b, header in spans]
        return [w for w in out if w.shape[0] >= self.config.min_length]
