"""Per-sample numbers that judge generated text (``seqstudio evaluate RUN --samples N``).

Every document gets cheap text statistics; ABC documents also get the ABC checks, whose mean over generated
samples is the share of tunes that parse and convert to MIDI (``abc_valid``).

| metric | meaning |
|---|---|
| ``chars`` | length in characters |
| ``lines`` | non-empty lines |
| ``line_length`` | mean length of the non-empty lines |
| ``distinct_chars`` | number of different characters used |
| ``repeated_lines`` | share of non-empty lines that repeat an earlier line (structure / looping) |
| ``abc_valid`` | 1 if music21 parses the tune and it converts to MIDI with at least one note, else 0 |
| ``abc_notes`` | notes in that MIDI (undefined, so left out, for invalid tunes) |
| ``abc_pitch_range`` | highest minus lowest MIDI pitch (likewise) |
"""

from __future__ import annotations

import math
from collections import Counter

from .abc import check_abc

TEXT_METRICS = ("chars", "lines", "line_length", "distinct_chars", "repeated_lines")
ABC_METRICS = ("abc_valid", "abc_notes", "abc_pitch_range")


def text_metrics(text: str) -> dict[str, float]:
    lines = [line for line in text.split("\n") if line.strip()]
    repeated = sum(1 for i, line in enumerate(lines) if line in lines[:i]) if lines else 0
    return {"chars": float(len(text)),
            "lines": float(len(lines)),
            "line_length": sum(map(len, lines)) / len(lines) if lines else 0.0,
            "distinct_chars": float(len(set(text))),
            "repeated_lines": repeated / len(lines) if lines else 0.0}


def abc_metrics(text: str) -> dict[str, float]:
    check = check_abc(text)
    return {"abc_valid": 1.0 if check.valid else 0.0,
            "abc_notes": float(check.notes) if check.valid else math.nan,
            "abc_pitch_range": check.pitch_range if check.valid else math.nan}


def compute_all(text: str, abc: bool) -> dict[str, float]:
    return {**text_metrics(text), **(abc_metrics(text) if abc else {})}


def validity_report(texts: list[str]) -> dict:
    """Share of ``texts`` that are valid ABC tunes, with the commonest reasons for the others."""
    checks = [check_abc(t) for t in texts]
    valid = sum(c.valid for c in checks)
    reasons = Counter(c.reason for c in checks if not c.valid)
    return {"tunes": len(texts), "valid": valid, "share_valid": valid / len(texts) if texts else math.nan,
            "mean_notes_valid": (sum(c.notes for c in checks if c.valid) / valid) if valid else math.nan,
            "invalid_reasons": dict(reasons.most_common(10))}
