"""Pen-strokes domain plugin for seqstudio: handwriting and drawings (KanjiVG, IAM-OnDB, QuickDraw, InkML)."""

__all__ = ["Ink", "from_stroke3", "to_stroke3"]


def __getattr__(name):
    """``Ink`` and its helpers load on first use: a recipe listing (`seqstudio data list`) must not pay for numpy."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import ink

    return getattr(ink, name)
