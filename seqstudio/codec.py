"""The Codec base class (encoder and decoder in one object, because they must agree) and its options,
beside the Domain base class (``seqstudio.domain``, which names them too)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import ConfigError
from .spec import FeatureSpec

if TYPE_CHECKING:  # encoding workers load domains and codecs without torch (``seqstudio.encoding``)
    import numpy as np
    import torch


@dataclasses.dataclass
class CodecConfig:
    """Options every codec understands; codecs extend this with their own fields.

    ``window`` is the training-window length in codec steps (0 = whole pieces), ``hop`` the stride between
    windows (0 = same as window). Augmentation options belong to the codecs they make sense for (the music
    codecs' ``transpose``), so any other codec refuses them as unknown options.
    """

    window: int = 64
    hop: int = 0
    min_length: int = 4
    # Every codec had ``transpose`` (default 0) before it moved to the music codecs: old runs load.
    retired_options: ClassVar[dict] = {"transpose": (0, "")}


class Codec:
    """Encoder and decoder in one object, because the two must agree.

    Subclasses set ``name``, ``Config`` and implement ``spec``, ``encode`` and ``decode``.

    The fit contract: a codec that learns from the training data (vocabularies, normalisation scales) declares
    ``needs_fit = True``. Before encoding, the loader calls ``fit`` once, on the training split's samples, unless
    ``is_fitted`` already holds (a codec restored from a run directory). Whatever ``fit`` learns must be returned
    by ``state_dict`` (JSON) and restored by ``load_state_dict``, so a run directory rebuilds the codec without
    the data; the learned state is also part of the encoding cache's key.

    Encoding cache: encoded pieces are cached by file content and ``encoding_config()``, which leaves out the
    fields that only cut pieces into windows (``windowing_fields``) or only augment training windows
    (``augmentation_fields``). A codec whose ``encode`` reads another field only for windowing or augmentation
    adds it to those lists; one whose ``encode`` reads a windowing field must take it out. Fields that only
    ``decode`` reads (``decoding_fields``: a MIDI codec's output tempo) are left out of the key too.

    What decoding gives back that the tensor does not hold (a MIDI file's tempo and instrument): the domain
    records it per piece as provenance (``Domain.provenance``, stored with the encoded piece); ``decode_piece``
    decodes a known piece with its own, and ``fit_decoding`` learns from the training pieces' what ``decode``
    gives a generated one (``decoding_state``, saved in the run's codec.json, never part of the cache key).
    """

    name: ClassVar[str] = "codec"
    Config: ClassVar[type] = CodecConfig
    needs_fit: ClassVar[bool] = False
    windowing_fields: ClassVar[tuple[str, ...]] = ("window", "hop", "min_length")
    augmentation_fields: ClassVar[tuple[str, ...]] = ()
    decoding_fields: ClassVar[tuple[str, ...]] = ()
    # The class (of the first part) that stands for what the fitted codec never saw, if it has one (a text
    # vocabulary's <unk>): `train --from` refuses a folder the codec would mostly map to it (seqstudio.finetune).
    unknown_token: ClassVar[int | None] = None

    def __init__(self, config: CodecConfig | None = None):
        self.config = config if config is not None else self.Config()

    # -- what the tensors hold -------------------------------------------------------------------------------
    @property
    def spec(self) -> FeatureSpec:
        raise NotImplementedError

    @property
    def window_length(self) -> int:
        """Training window length in steps; also the default generation length."""
        return self.config.window

    @property
    def hop_length(self) -> int:
        """Stride between training windows in steps (``windows`` uses it; a codec that counts windows in other
        units, such as bars, overrides this and ``window_length`` rather than ``windows``)."""
        return self.config.hop or self.window_length

    # -- learned state -----------------------------------------------------------------------------------------
    def fit(self, samples: list[Any]) -> None:
        """Learn data-dependent state from training samples (default: nothing to learn)."""

    def state_dict(self) -> dict:
        """JSON-serialisable learned state (default: none)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned."""

    @property
    def is_fitted(self) -> bool:
        """Ready to encode: nothing to learn, or learned state present (from ``fit`` or ``load_state_dict``)."""
        return not self.needs_fit or bool(self.state_dict())

    def encoding_config(self) -> dict[str, Any]:
        """The configuration values that change what ``encode`` returns (the encoding cache's key)."""
        skip = set(self.windowing_fields) | set(self.augmentation_fields) | set(self.decoding_fields)
        return {f.name: getattr(self.config, f.name) for f in dataclasses.fields(self.config) if f.name not in skip}

    # -- conversion ---------------------------------------------------------------------------------------------
    def encode(self, sample: Any) -> torch.Tensor:
        """Sample -> ``[T, spec.storage_width]`` float tensor."""
        raise NotImplementedError

    def encode_array(self, sample: Any) -> np.ndarray:
        """``encode`` as a float32 numpy array ``[T, storage_width]``: what the loader stores. A codec whose
        module does not import torch at its top and that overrides this (the MIDI codecs) is encoded in worker
        processes that never import torch (``seqstudio.encoding``). Default: ``encode(sample)`` converted."""
        x = self.encode(sample)
        return x.detach().cpu().numpy() if hasattr(x, "detach") else x

    def decode(self, x: torch.Tensor) -> Any:
        """``[T, spec.storage_width]`` tensor -> sample."""
        raise NotImplementedError

    def without_end(self, x: torch.Tensor) -> torch.Tensor:
        """Storage-layout ``x`` ``[..., storage_width]`` with any mark that says a sample ends here (stroke-5's
        end-of-drawing state) turned into the nearest mark that lets it go on (a pen lift). For what a model
        goes on from or past: a ``--prime`` or ``--style`` file (the model never saw anything follow an end mark
        in training, and ``decode`` would stop there, dropping the continuation), and each step of a
        text-conditioned line, whose end the attention window decides (``generate --text``). Default: ``x``
        (encodings without an end mark)."""
        return x

    def segment_ends(self, x: torch.Tensor) -> torch.Tensor | None:
        """Bool ``[...]``: which steps of storage-layout ``x`` ``[..., storage_width]`` end a segment of a sample
        (a pen stroke: the pen lifts after that point), or None when the codec's samples have no segments
        (default). ``generate --text`` ends a line at a segment end once the attention window has passed the
        text (``seqstudio.api.text_lines``), so the last word is finished rather than cut."""
        return None

    # -- what decoding gives back that the tensor does not hold -----------------------------------------------------
    def decode_piece(self, x: torch.Tensor, provenance: dict[str, str]) -> Any:
        """Decode a known piece (a round trip, a ``--prime`` file's continuation) with the provenance its domain
        recorded for it (``Domain.provenance``). Default: ``decode(x)``."""
        return self.decode(x)

    def fit_decoding(self, provenance: list[dict]) -> None:
        """Learn what ``decode`` gives a generated piece from the training pieces' provenance dicts (the MIDI
        codecs: their median tempo and most common instrument). Default: nothing."""

    def decoding_state(self) -> dict:
        """JSON-serialisable state ``fit_decoding`` learned (saved in codec.json, not in the cache key)."""
        return {}

    def load_decoding_state(self, state: dict) -> None:
        """Restore what ``decoding_state`` returned."""

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random, label-preserving change of an encoded window for training (default: none)."""
        return x

    def augment_with_change(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, Any]:
        """``augment``, and what it changed, as one of ``augmentation_changes()`` (the music codecs: the
        semitones a window was transposed by), so a label that moves with the content (a key) can be moved
        too (``Domain.moved_attribute``); None: nothing a label could follow. Default: ``(augment(x), None)``."""
        return self.augment(x, generator), None

    def augmentation_changes(self) -> tuple:
        """Every change ``augment_with_change`` can report (hashable values the codec's domain understands);
        the run's conditions add the values a label takes under them to its vocabulary. Default: none."""
        return ()

    # -- where a mask goes (seqstudio.infill) -------------------------------------------------------------------------
    # Infilling masks positions of the codec's tensor: (step, spec part) pairs. The codec says which positions a
    # bar or a voice is, so backends fill masked positions and never learn what a bar or a voice is.
    voices: ClassVar[tuple[str, ...]] = ()  # names of the codec's voices, top first (none: no voices)

    @property
    def steps_per_bar(self) -> int:
        """Grid steps in one bar, or 0 when the codec's steps are not in musical time (tokens, pen points)."""
        return 0

    def bar_steps(self, first: int, last: int, length: int) -> tuple[int, int]:
        """Steps ``[start, stop)`` of bars ``first..last`` (1-based, inclusive) of an encoded piece of ``length``
        steps; ``ConfigError`` (one line) for bars outside the piece, or a codec without bars."""
        per_bar = self.steps_per_bar
        if per_bar <= 0:
            raise ConfigError(f"codec {self.name!r} has no bars to fill; --bars needs a codec on a musical grid "
                              f"(midi: voices or pianoroll)")
        bars = -(-length // per_bar)
        if not 1 <= first <= last:
            raise ConfigError(f"--bars {first}-{last}: give FIRST-LAST with 1 <= FIRST <= LAST")
        if last > bars:
            raise ConfigError(f"--bars {first}-{last} is outside the piece, which has {bars} bar(s)")
        return (first - 1) * per_bar, min(last * per_bar, length)

    def voice_parts(self, voice: str) -> list[int]:
        """Indices of the spec parts that hold ``voice`` (one of ``voices``); ``ConfigError`` otherwise."""
        if not self.voices:
            raise ConfigError(f"codec {self.name!r} has no voices; harmonising needs a codec with voices "
                              f"(midi: train with --codec voices)")
        raise ConfigError(f"codec {self.name!r} has no voice {voice!r} (voices: {', '.join(self.voices)})")

    def encode_line(self, sample: Any, voice: str) -> torch.Tensor:
        """A one-line sample (a melody) encoded into ``voice``'s parts of a ``[T, storage_width]`` tensor (the other
        parts hold anything: they are to be filled); ``DataError`` (one line) when the sample is not one line."""
        self.voice_parts(voice)
        raise NotImplementedError

    def windows(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Cut an encoded piece into training windows (MusicVAE-style fixed-length excerpts).

        Codecs with a natural unit (bars, lines) may override this to cut on boundaries.
        """
        window = self.window_length
        if window <= 0 or x.shape[0] <= window:
            return [x] if x.shape[0] >= self.config.min_length else []
        starts = list(range(0, x.shape[0] - window + 1, self.hop_length))
        return [x[s : s + window] for s in starts]
