"""Run state that rides on a fitted codec (its conditions, its text spec): set once by ``prepare_data`` or
restored from a run's codec.json, read wherever the codec goes. One small accessor triple per kind of state,
kept here so ``conditions`` and ``text_condition`` do not each write it."""

from __future__ import annotations

from typing import Any


class CodecSlot:
    """``of(codec)``: the state, or None; ``attach(codec, value)``; ``decided(codec)``: whether it was set at
    all (possibly to None: "settled as none")."""

    def __init__(self, name: str):
        self.attr = f"_seqstudio_{name}"

    def of(self, codec) -> Any:
        return getattr(codec, self.attr, None)

    def attach(self, codec, value) -> None:
        setattr(codec, self.attr, value)

    def decided(self, codec) -> bool:
        return hasattr(codec, self.attr)
