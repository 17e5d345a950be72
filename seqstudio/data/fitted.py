"""What a run learned from its training data, as one value: the codec's state, the conditions, the text alphabet
and the decoding defaults. ``data.prepare`` fits it once, on the train split; the run directory stores exactly it
(``codec.json``); ``generate``, ``evaluate`` and a resumed ``train`` start from it again.

``codec.json`` keeps the layout every run directory has had: the codec's own ``state_dict`` keys, with the
conditions (``_conditions``), the text condition (``_text``) and the decoding defaults (``_decoding``) beside
them when the run has them. So a run directory written before this value existed loads unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..conditions import STATE_KEY as CONDITIONS_KEY
from ..conditions import ConditionSpec
from ..domain import Codec
from ..text_condition import STATE_KEY as TEXT_KEY
from ..text_condition import TextSpec

DECODING_KEY = "_decoding"  # what the codec learned for decoding (``Codec.decoding_state``)


@dataclasses.dataclass(frozen=True)
class Fitted:
    """What decoding and conditioning need that the tensors do not hold.

    ``codec_state``: the codec's ``state_dict`` (vocabulary, scales; ``Codec.fit``). ``conditions``: the
    categorical conditions (``seqstudio.conditions``), None for an unconditional run. ``text``: the sequence
    condition's alphabet (``seqstudio.text_condition``), None without one. ``decoding``: what ``decode`` gives a
    generated piece (``Codec.fit_decoding``: a MIDI run's tempo and program)."""

    codec_state: dict[str, Any]
    conditions: ConditionSpec | None = None
    text: TextSpec | None = None
    decoding: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, codec: Codec, conditions: ConditionSpec | None = None, text: TextSpec | None = None) -> "Fitted":
        """The value of a fitted ``codec`` with the run's conditions and text."""
        return cls(codec.state_dict(), conditions, text, dict(codec.decoding_state() or {}))

    def apply(self, codec: Codec) -> Codec:
        """Give ``codec`` its learned state and decoding defaults (the codec's own errors propagate: the run
        directory's loader names the file)."""
        codec.load_decoding_state(dict(self.decoding))
        codec.load_state_dict(dict(self.codec_state))
        return codec

    # -- codec.json ---------------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """The mapping ``codec.json`` holds."""
        state = dict(self.codec_state)
        if self.conditions is not None:
            state[CONDITIONS_KEY] = self.conditions.to_dict()
        if self.text is not None:
            state[TEXT_KEY] = self.text.to_dict()
        if self.decoding:
            state[DECODING_KEY] = dict(self.decoding)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Fitted":
        """From what ``codec.json`` holds (a damaged condition or text description is a ``ConfigError``)."""
        state = dict(state)
        conditions = ConditionSpec.from_dict(state.pop(CONDITIONS_KEY)) if CONDITIONS_KEY in state else None
        text = TextSpec.from_dict(state.pop(TEXT_KEY)) if TEXT_KEY in state else None
        decoding = state.pop(DECODING_KEY, None) or {}
        return cls(state, conditions, text, dict(decoding))
