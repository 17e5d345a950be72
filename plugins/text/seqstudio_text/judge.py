"""What the sample judge (``seqstudio.judge``) sees of text: one excerpt per sample (a generated sample and a
real training window are both one codec window long at most), and cheap statistics of its characters, words and
lines; shares and means, so the length of a sample counts only through ``log_chars``. (The ABC checks of
``metrics.py`` parse with music21, far too slow for the judge; their validity share stays in the metrics.)

| feature | meaning |
|---|---|
| ``log_chars`` | log of the length in characters |
| ``letters``, ``upper``, ``digits``, ``spaces``, ``newlines``, ``punctuation``, ``other`` | share of characters of each class (``upper``: of the letters) |
| ``word_length``, ``word_length_sd`` | mean and standard deviation of word length (words: runs between white space) |
| ``line_length``, ``line_length_sd`` | the same for the non-empty lines |
| ``distinct_words`` | distinct words over words (type-token ratio) |
| ``repeated_lines`` | share of non-empty lines that repeat an earlier one |
| ``repeated_bigrams`` | share of word pairs that repeat an earlier pair |
| ``distinct_chars`` | distinct characters over characters |

The negative controls (``controls``) are each excerpt with its characters shuffled, and random characters (as
many, drawn uniformly from the excerpt's own characters).
"""

from __future__ import annotations

import math
import string

import numpy as np

PUNCTUATION = set(".,;:!?'\"-()")


def features(text: str) -> dict[str, float]:
    """The judge's features of one text (the table in the module's docstring)."""
    text = str(text)
    n = max(len(text), 1)
    letters = sum(c.isalpha() for c in text)
    counts = {"letters": letters, "digits": sum(c.isdigit() for c in text), "spaces": text.count(" ") + text.count(
        "\t"), "newlines": text.count("\n"), "punctuation": sum(c in PUNCTUATION for c in text)}
    out = {"log_chars": math.log1p(len(text))}
    out.update({k: v / n for k, v in counts.items()})
    out["other"] = max(0.0, 1.0 - sum(counts.values()) / n) if text else 0.0
    out["upper"] = sum(c.isupper() for c in text) / letters if letters else 0.0
    words = text.split()
    lengths = np.array([len(w) for w in words], dtype=float)
    out["word_length"] = float(lengths.mean()) if lengths.size else 0.0
    out["word_length_sd"] = float(lengths.std()) if lengths.size else 0.0
    lines = [line for line in text.split("\n") if line.strip()]
    line_lengths = np.array([len(line) for line in lines], dtype=float)
    out["line_length"] = float(line_lengths.mean()) if line_lengths.size else 0.0
    out["line_length_sd"] = float(line_lengths.std()) if line_lengths.size else 0.0
    out["distinct_words"] = len(set(words)) / len(words) if words else 0.0
    out["repeated_lines"] = (sum(1 for i, line in enumerate(lines) if line in lines[:i]) / len(lines)
                             if lines else 0.0)
    pairs = list(zip(words, words[1:]))
    seen: set = set()
    repeats = 0
    for pair in pairs:
        repeats += pair in seen
        seen.add(pair)
    out["repeated_bigrams"] = repeats / len(pairs) if pairs else 0.0
    out["distinct_chars"] = len(set(text)) / n
    return out


def shuffled_chars(text: str, rng: np.random.Generator) -> str:
    chars = list(str(text))
    return "".join(chars[i] for i in rng.permutation(len(chars)))


def random_chars(text: str, rng: np.random.Generator) -> str:
    alphabet = sorted(set(str(text))) or list(string.ascii_lowercase)
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), len(str(text))))


def controls(items: list, seed: int = 0) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    return {"shuffled characters": [shuffled_chars(t, rng) for t in items],
            "random characters": [random_chars(t, rng) for t in items]}
