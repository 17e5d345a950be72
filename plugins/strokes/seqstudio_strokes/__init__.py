"""Pen-strokes domain plugin for seqstudio: handwriting and drawings (KanjiVG, IAM-OnDB, QuickDraw, InkML)."""

from .ink import Ink, from_stroke3, to_stroke3

__all__ = ["Ink", "from_stroke3", "to_stroke3"]
