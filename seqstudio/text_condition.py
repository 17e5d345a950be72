"""A condition of the SEQUENCE kind: a sample's transcription, as symbol ids a backend attends over.

The categorical conditions (``seqstudio.conditions``) give a backend one vector per sequence. Text is different:
"write *this* line" needs the model to move along the characters as it writes (Graves 2013, section 5; the
window is ``seqstudio.attention``). The pieces, domain-agnostic like the FeatureSpec:

* A domain names its sequence attributes (``Domain.sequence_attributes``, e.g. the strokes domain's ``text``,
  an IAM / Hershey line's transcription) and returns them from ``Domain.attributes`` like the others; they are
  taken out of the categorical fit (a transcription is not a class).
* ``TextSpec.fit`` learns the character vocabulary on the training pieces (id 0 = padding, 1 = a character
  never seen in training, then the alphabet), the mean characters per step (which starts the window's speed
  where the data is), and a few training texts (what ``generate`` writes when no ``--text`` is given). It is
  stored in the run's ``codec.json`` beside the categorical conditions (key ``_text``; ``data.Fitted``).
* ``train.text``: ``auto`` (default) = on when the data carries a sequence attribute whose value varies per
  piece; ``none`` = off; or the attribute's name (an error if the backend cannot take it).
* Text-conditioned training needs whole lines, never cut windows (a window must see the text it writes): the
  windows are the whole pieces, and a piece longer than the codec's window (the line-length limit) is left out
  with one warning naming how many.
* Batches carry ``text`` [B, U] (long ids, 0 = padding) and ``text_mask`` [B, U]; sampling gets
  ``SamplingOptions.text``. A backend that takes text declares ``accepts_text``; others are refused.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter

import torch

from .errors import ConfigError, DataError

log = logging.getLogger("seqstudio")
STATE_KEY = "_text"
PAD, UNSEEN = 0, 1
FIRST = 2  # id of the alphabet's first character
EXAMPLES = 16  # training texts kept for a text-less ``generate``


@dataclasses.dataclass(frozen=True)
class TextSpec:
    """The run's text vocabulary and window settings; JSON round trip through ``to_dict`` / ``from_dict``."""

    attribute: str  # the sequence attribute conditioned on (e.g. "text")
    alphabet: str  # training characters, most frequent first; character i has id i + FIRST
    counts: tuple[int, ...] = ()
    mixtures: int = 10  # Gaussian windows (Graves' K)
    chars_per_step: float = 0.05  # training texts' characters per sequence step (the window's initial speed)
    max_chars: int = 0  # the longest training text
    examples: tuple[str, ...] = ()

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet) + FIRST

    # -- fitting -----------------------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, names: tuple[str, ...], attrs: list[dict], steps: list[int], selection: str = "auto",
            mixtures: int = 10) -> "TextSpec | None":
        """From the training pieces' attribute dicts and step counts; None when off or nothing varies."""
        text = str(selection).strip().lower()
        if text in ("none", "off", "false", ""):
            return None
        present = [n for n in names if any((a or {}).get(n) for a in attrs)]
        if text == "auto":  # a transcription varies per piece (a handful of repeated titles are classes)
            def distinct(n):
                return len({(a or {}).get(n) for a in attrs if (a or {}).get(n)})

            varying = [n for n in present if distinct(n) > 1 and (distinct(n) > 20 or distinct(n) > 0.5 * len(attrs))]
            if not varying:
                return None
            name = varying[0]
        else:
            name = str(selection).strip()
            if name not in names:
                raise ConfigError(f"train.text={selection}: the domain has no sequence attribute {name!r}; "
                                  f"it has: {', '.join(names) or 'none'}")
            if name not in present:
                raise ConfigError(f"train.text={selection}: no training piece carries a {name!r}")
        texts = [str((a or {}).get(name) or "") for a in attrs]
        chars = Counter(ch for t in texts for ch in t)
        ordered = sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))
        pairs = [(len(t), s) for t, s in zip(texts, steps) if t and s > 0]
        rate = sum(u for u, _ in pairs) / max(1, sum(s for _, s in pairs)) if pairs else 0.05
        examples = tuple(dict.fromkeys(t for t in texts if t))[:EXAMPLES]
        return cls(name, "".join(c for c, _ in ordered), tuple(n for _, n in ordered), int(mixtures),
                   float(rate or 0.05), max((len(t) for t in texts), default=0), examples)

    # -- the file form -------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"attribute": self.attribute, "alphabet": self.alphabet, "counts": list(self.counts),
                "mixtures": self.mixtures, "chars_per_step": self.chars_per_step, "max_chars": self.max_chars,
                "examples": list(self.examples)}

    @classmethod
    def from_dict(cls, d: dict) -> "TextSpec":
        try:
            spec = cls(str(d["attribute"]), str(d["alphabet"]), tuple(int(c) for c in d.get("counts", [])),
                       int(d.get("mixtures", 10)), float(d.get("chars_per_step", 0.05)), int(d.get("max_chars", 0)),
                       tuple(str(e) for e in d.get("examples", [])))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"not a description of a text condition ({exc})") from None
        if spec.mixtures < 1 or not spec.alphabet or len(set(spec.alphabet)) != len(spec.alphabet):
            raise ConfigError("not a description of a text condition (mixtures or alphabet invalid)")
        return spec

    # -- text <-> ids ------------------------------------------------------------------------------------------------
    def ids(self, text: str) -> list[int]:
        """Symbol ids of ``text`` (a character never seen in training -> ``UNSEEN``)."""
        index = {c: i + FIRST for i, c in enumerate(self.alphabet)}
        return [index.get(ch, UNSEEN) for ch in str(text)]

    def outside(self, text: str) -> list[str]:
        return sorted({ch for ch in str(text) if ch not in self.alphabet})

    def check(self, text: str, what: str = "--text") -> None:
        """A ConfigError (one line) naming the characters of ``text`` outside the training alphabet."""
        if not str(text):
            raise ConfigError(f"{what}: empty text")
        bad = self.outside(text)
        if bad:
            raise ConfigError(f"{what} {text!r}: character(s) {' '.join(repr(c) for c in bad)} are not in the "
                              f"training alphabet ({len(self.alphabet)} characters: {self.alphabet!r})")

    def tensor(self, texts: list[str]) -> torch.Tensor:
        """``[n, U]`` long ids, right-padded with ``PAD``."""
        rows = [self.ids(t) for t in texts]
        out = torch.zeros(len(rows), max([len(r) for r in rows] + [1]), dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return out

    def describe(self) -> str:
        return f"{self.attribute} ({len(self.alphabet)} characters, up to {self.max_chars} per piece)"


# -- the run's text condition ----------------------------------------------------------------------------------------
def sequence_names(domain) -> tuple[str, ...]:
    return tuple(domain.sequence_attributes)


def categorical_only(domain, attrs: list[dict], spec: "TextSpec | None" = None) -> list[dict]:
    """The attribute dicts without the domain's sequence attributes (which the categorical fit must not see) and,
    for a text run, without any attribute that repeats the piece's text (a Hershey line's ``label``)."""
    names = set(sequence_names(domain))
    if not names:
        return attrs
    out = []
    for a in attrs:
        a = a or {}
        text = a.get(spec.attribute) if spec is not None else None
        out.append({k: v for k, v in a.items() if k not in names and (text is None or v != text)})
    return out


def line_selection(spec: TextSpec | None, pieces: list, attrs: list[dict], limit: int) -> list[int]:
    """The positions of the pieces a text run trains on: those with a text and at most ``limit`` steps (the
    line-length limit); every position without a text condition."""
    if spec is None:
        return list(range(len(pieces)))
    return [i for i, (p, a) in enumerate(zip(pieces, attrs))
            if (a or {}).get(spec.attribute) and (limit <= 0 or len(p) <= limit)]


def whole_lines(spec: TextSpec | None, pieces: list[torch.Tensor], attrs: list[dict], limit: int, split: str):
    """``(pieces, attrs, texts [N, U] or None)``: for a text run, the pieces with a text and at most ``limit``
    steps (the line-length limit; one warning names how many were left out); else everything unchanged."""
    if spec is None:
        return pieces, attrs, None
    keep = line_selection(spec, pieces, attrs, limit)
    too_long = sum(1 for p in pieces if limit > 0 and len(p) > limit)
    untexted = sum(1 for a in attrs if not (a or {}).get(spec.attribute))
    if len(keep) < len(pieces):
        log.warning("text: %s: left out %d of %d lines (%d longer than the line-length limit of %d steps, "
                    "--set codec.window=N; %d without a %s)", split, len(pieces) - len(keep), len(pieces),
                    too_long, limit, untexted, spec.attribute)
    if split == "train" and pieces and not keep:
        raise DataError(f"text: all {len(pieces)} training lines are left out ({too_long} longer than the line-length "
                        f"limit of {limit} steps, {untexted} without a {spec.attribute}); raise the limit with --set "
                        f"codec.window=N or train without the text: --set train.text=none")
    pieces = [pieces[i] for i in keep]
    attrs = [attrs[i] for i in keep]
    return pieces, attrs, spec.tensor([str(a[spec.attribute]) for a in attrs]) if attrs else \
        torch.zeros(0, 1, dtype=torch.long)
