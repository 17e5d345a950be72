"""Character error rate: how far a read-back text is from the text that was asked for.

The handwriting literature scores what a model wrote by recognising it and counting edits (the HTG evaluation
papers' CER; SDT's content score). CER = (substitutions + insertions + deletions) / characters asked, summed over
lines before dividing, so long lines weigh by their length and one empty line cannot dominate. It can exceed 1
when the reading is much longer than the text.
"""

from __future__ import annotations


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: the fewest single-character insertions, deletions and substitutions from a to b."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def character_error_rate(read: list[str], asked: list[str]) -> float:
    """Total edits from each asked text to its reading over the total asked characters (NaN for no text)."""
    if len(read) != len(asked):
        raise ValueError(f"{len(read)} readings for {len(asked)} texts")
    chars = sum(len(t) for t in asked)
    if chars == 0:
        return float("nan")
    return sum(edit_distance(r, t) for r, t in zip(read, asked)) / chars
