"""Pen-strokes domain plugin for seqstudio: handwriting and drawings (KanjiVG, IAM-OnDB, QuickDraw, InkML)."""

from seqstudio.lazy import lazy_names

__all__ = ["Ink", "from_stroke3", "to_stroke3"]

# ``Ink`` and its helpers load on first use: a recipe listing (`seqstudio data list`) must not pay for numpy.
_LAZY = {"Ink": "ink", "from_stroke3": "ink", "to_stroke3": "ink"}

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
