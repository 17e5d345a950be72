"""Conditioning: named categorical attributes of a sample (a key, a metre, a class), as the backends see them.

Domain-agnostic, like the FeatureSpec. The pieces:

* A domain says what a sample carries: ``Domain.attributes(sample, path) -> {name: value}`` (strings; a value
  it cannot tell is left out). Keys starting with ``_`` are provenance (``_key_source: meta``), counted and
  kept for the record, never conditioned on.
* ``ConditionSpec.fit`` learns a vocabulary per attribute from the training pieces (index 0 is "unknown": a
  value never seen in training, a missing one, or a condition dropped in training), which attributes to use
  (``train.conditions``: ``auto`` = every attribute with more than one value), the joint distribution of the
  training pieces' values (a condition-less ``generate`` samples from it), the dropout rate and embedding width.
  It is stored in the run's ``codec.json`` (key ``_conditions``, see ``rundir``), so a run directory rebuilds it
  without the data.
* Batches carry ``batch["condition"]``: ``[B, A]`` long indices. Backends never read the meaning: they call
  ``Backend.condition_vector`` and get ``[B, condition_size]`` from a ``ConditionEmbedding`` (one learned
  table per attribute, summed), with condition dropout in training so one model also generates
  unconditionally (all indices 0).
* ``mode = "prime"``: a domain whose samples already state their attributes in-band (ABC headers in text)
  declares ``conditions_as_prime``; the backend is then not conditioned and ``generate`` turns the asked values
  into a prime (``Domain.condition_prime``), so users ask the same way everywhere; without ``--condition`` each
  sample's values are drawn from the training distribution and primed, as the embedding mode samples them.
* A data folder may declare attributes of its file names in its ``seqstudio.yaml`` (``attributes: {name:
  regex}``, written by ``data build`` from a recipe's ``attributes:``): ``folder_attributes.add_folder_attributes``
  merges them into what the domain said, for any domain (the essen-folk recipe's ``collection``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections import Counter
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn as nn

from . import text_condition
from .errors import ConfigError

log = logging.getLogger("seqstudio")
UNKNOWN = "<unknown>"
# An attribute with more distinct values than this share of the pieces is a free-text field, not a class
# (an IAM line's transcription): ``auto`` leaves it out.
MAX_DISTINCT_SHARE = 0.5
MAX_VALUES = 1000


@dataclasses.dataclass(frozen=True)
class Attribute:
    """One categorical attribute: its name and the values seen in training (index ``i + 1``; 0 = unknown)."""

    name: str
    values: tuple[str, ...]
    counts: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.values) + 1

    @functools.cached_property
    def _indices(self) -> dict[str, int]:
        """value -> index, the first of equal values winning (as ``tuple.index``); fitting and windowing look up
        every piece."""
        return {value: i + 1 for i, value in reversed(list(enumerate(self.values)))}

    def index(self, value: Any) -> int:
        return self._indices.get(str(value), 0)

    def label(self, index: int) -> str:
        return self.values[index - 1] if 0 < index <= len(self.values) else UNKNOWN


MAX_NOTE_VALUES = 12  # provenance values listed per note (the log, codec.json, `info`); the others are summed


def _capped(counts: Counter) -> tuple[tuple[str, int], ...]:
    """The most common ``MAX_NOTE_VALUES`` values of a provenance note, by value, then ``("N other values",
    count)``: a Lakh-size corpus has thousands of distinct tempos, which no log line should list."""
    common = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept, rest = sorted(common[:MAX_NOTE_VALUES]), common[MAX_NOTE_VALUES:]
    return tuple(kept) + ((f"{len(rest)} other values", sum(n for _, n in rest)),) if rest else tuple(kept)


@dataclasses.dataclass(frozen=True)
class ConditionSpec:
    """What a conditional run conditions on; JSON round trip through ``to_dict`` / ``from_dict``."""

    attributes: tuple[Attribute, ...]
    dropout: float = 0.1  # probability, per attribute and sequence, that training sees "unknown" instead
    size: int = 16  # width of the embedding the backends consume
    mode: str = "embedding"  # embedding: backends consume it | prime: generate primes with the values
    combos: tuple[tuple[tuple[int, ...], int], ...] = ()  # joint training distribution: (indices, count)
    notes: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()  # provenance counts (``_key_source``)

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.attributes]

    @property
    def conditions_backend(self) -> bool:
        return self.mode == "embedding"

    # -- fitting ---------------------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, pieces: list[dict], selection: str = "auto", dropout: float = 0.1, size: int = 16,
            mode: str = "embedding") -> "ConditionSpec | None":
        """From the training pieces' attribute dicts; None when nothing is selected (or nothing varies)."""
        counts: dict[str, Counter] = {}
        notes: dict[str, Counter] = {}
        for attrs in pieces:
            for name, value in (attrs or {}).items():
                if value is None or value == "":
                    continue
                table = notes if name.startswith("_") else counts
                counter = table.get(name)
                if counter is None:  # not setdefault(name, Counter()): a Counter made per value was half the fit
                    counter = table[name] = Counter()
                counter[str(value)] += 1
        wanted = _selection(selection, counts)
        if wanted is None:
            return None
        chosen = []
        for name in wanted:
            values = sorted(counts[name].items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_VALUES]
            chosen.append(Attribute(name, tuple(v for v, _ in values), tuple(c for _, c in values)))
        if not chosen:
            return None
        joint = Counter(tuple(a.index((p or {}).get(a.name)) for a in chosen) for p in pieces)
        combos = tuple(sorted(joint.items(), key=lambda kv: (-kv[1], kv[0])))
        note_items = tuple((k, _capped(v)) for k, v in sorted(notes.items()))
        return cls(tuple(chosen), float(dropout), int(size), mode, combos, note_items)

    # -- the file form -----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"attributes": [{"name": a.name, "values": list(a.values), "counts": list(a.counts)}
                               for a in self.attributes],
                "dropout": self.dropout, "size": self.size, "mode": self.mode,
                "combos": [[list(ix), n] for ix, n in self.combos],
                "notes": {k: dict(v) for k, v in self.notes}}

    @classmethod
    def from_dict(cls, d: dict) -> "ConditionSpec":
        try:
            attrs = tuple(Attribute(str(a["name"]), tuple(str(v) for v in a["values"]),
                                    tuple(int(c) for c in a.get("counts", [1] * len(a["values"]))))
                          for a in d["attributes"])
            combos = tuple((tuple(int(i) for i in ix), int(n)) for ix, n in d.get("combos", []))
            notes = tuple((str(k), tuple((str(a), int(b)) for a, b in v.items()))
                          for k, v in d.get("notes", {}).items())
            spec = cls(attrs, float(d.get("dropout", 0.1)), int(d.get("size", 16)), str(d.get("mode", "embedding")),
                       combos, notes)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"not a description of conditions ({exc})") from None
        if spec.mode not in ("embedding", "prime") or spec.size < 1 or not attrs:
            raise ConfigError("not a description of conditions (mode, size or attributes invalid)")
        return spec

    # -- values <-> indices -------------------------------------------------------------------------------------------
    def indices(self, attrs: dict | None) -> list[int]:
        return [a.index((attrs or {}).get(a.name)) for a in self.attributes]

    def labels(self, row: Iterable[int]) -> dict[str, str]:
        return {a.name: a.label(int(i)) for a, i in zip(self.attributes, row) if int(i) > 0}

    def parse(self, pairs: Iterable[str]) -> dict[str, str]:
        """``["key=G:minor", "meter=3/4"]`` -> ``{name: value}``; a ConfigError (one line, listing the valid
        names or values) for anything the run was not trained with."""
        out = {}
        by_name = {a.name: a for a in self.attributes}
        for pair in pairs:
            name, sep, value = str(pair).partition("=")
            name, value = name.strip(), value.strip()
            if not sep or not name:
                raise ConfigError(f"--condition {pair!r}: expected NAME=VALUE (names: {', '.join(by_name)})")
            if name not in by_name:
                raise ConfigError(f"--condition {name}: this run is not conditioned on {name!r}; "
                                  f"its conditions: {', '.join(by_name)}")
            if by_name[name].index(value) == 0:
                raise ConfigError(f"--condition {name}={value}: unknown value; valid: "
                                  f"{', '.join(by_name[name].values)}")
            out[name] = value
        return out

    def tensor(self, attrs: dict, n: int = 1) -> torch.Tensor:
        """``[n, A]`` indices asking for ``attrs``; attributes not given are "unknown" (the model, trained with
        condition dropout, fills them in itself)."""
        return torch.tensor([self.indices(attrs)] * n, dtype=torch.long)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[n, A]`` indices drawn from the training pieces' joint distribution."""
        if not self.combos:
            return torch.zeros(n, len(self.attributes), dtype=torch.long)
        table = torch.tensor([list(ix) for ix, _ in self.combos], dtype=torch.long)
        weights = torch.tensor([float(c) for _, c in self.combos])
        pick = torch.multinomial(weights, n, replacement=True, generator=generator)
        return table[pick]

    def usual_notes(self) -> dict[str, str]:
        """The training pieces' most common value of each provenance note (``_unit``: ``1/8``): what a prime
        written for the asked values should otherwise look like (``Domain.condition_prime``)."""
        usual = {}
        for name, counts in self.notes:
            values = [item for item in counts if not item[0].endswith(" other values")]  # ``_capped``'s rest
            if values:
                usual[name] = max(values, key=lambda item: item[1])[0]
        return usual

    def describe(self) -> str:
        return ", ".join(f"{a.name} ({len(a.values)} values)" for a in self.attributes)


def _selection(selection: str, counts: dict[str, Counter]) -> list[str] | None:
    text = str(selection).strip().lower()
    if text in ("none", "off", "false", ""):
        return None
    if text == "auto":
        out = []
        for name in sorted(counts):
            n_values, seen = len(counts[name]), sum(counts[name].values())
            if n_values < 2:
                continue
            if n_values > 20 and n_values > MAX_DISTINCT_SHARE * seen:
                log.info("conditions: %r left out (%d distinct values in %d pieces: free text, not a class)",
                         name, n_values, seen)
                continue
            out.append(name)
        return out or None
    names = [n.strip() for n in str(selection).split(",") if n.strip()]
    missing = [n for n in names if n not in counts]
    if missing:
        raise ConfigError(f"train.conditions: the training data carries no attribute {', '.join(missing)}; "
                          f"it carries: {', '.join(sorted(counts)) or 'none'}")
    return names


class ConditionEmbedding(nn.Module):
    """``[B, A]`` attribute indices -> ``[B, size]``: one embedding table per attribute, summed.

    In training mode each index is replaced by 0 ("unknown") with probability ``spec.dropout`` (per attribute
    and sequence), so the model also learns the unconditional distribution."""

    def __init__(self, spec: ConditionSpec):
        super().__init__()
        self.dropout = spec.dropout
        self.tables = nn.ModuleList(nn.Embedding(a.size, spec.size) for a in spec.attributes)
        for table in self.tables:
            nn.init.normal_(table.weight, std=0.1)

    def drop(self, index: torch.Tensor) -> torch.Tensor:
        if not self.training or self.dropout <= 0:
            return index
        keep = torch.rand(index.shape, device=index.device) >= self.dropout
        return index * keep.long()

    def embed(self, index: torch.Tensor) -> torch.Tensor:
        sizes = torch.tensor([t.num_embeddings for t in self.tables], device=index.device)
        index = torch.minimum(index.clamp(min=0), sizes - 1)  # an index past a table is "unknown" of a bigger one
        return sum(table(index[:, i]) for i, table in enumerate(self.tables))

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.embed(self.drop(index))


# -- codec.json: the conditions are stored beside the codec's learned state (``data.Fitted``) ----------------------
STATE_KEY = "_conditions"


def fit_for_run(codec, domain, pieces: list, attrs: list[dict], train_config,
                backend_cls=None) -> tuple[ConditionSpec | None, "text_condition.TextSpec | None"]:
    """The run's conditions of both kinds, fitted on the training ``pieces`` and their attribute dicts, saying
    what was chosen: ``(categorical conditions, text condition)``, each None when off.

    First the sequence kind (``text_condition``: a transcription is never a class), then the categorical kind
    on the pieces a text run trains on (whole lines within the line-length limit), without the sequence
    attributes. Both follow one convention for a backend that cannot take them (``accepts_text``,
    ``accepts_conditions``): under ``auto`` the run trains without them, said in the log; asked for by name,
    they are refused with one line."""
    text = text_condition.TextSpec.fit(text_condition.sequence_names(domain), attrs, [len(p) for p in pieces],
                                       train_config.text, train_config.text_mixtures)
    if text is not None:
        text = _for_backend(
            text, backend_cls, "accepts_text", train_config.text,
            f"cannot take a sequence condition (it does not declare accepts_text); train.text={train_config.text} "
            f"asks for {text.describe()}; use --backend rnn or vrnn, or --set train.text=none",
            "text: the data carries %s, but backend %r takes no sequence condition: training without it")
    if text is not None:
        log.info("text: conditioned on %s, %d Gaussian windows; whole lines are the windows; "
                 "--set train.text=none turns it off", text.describe(), text.mixtures)
    kept = attrs if text is None else [attrs[i] for i in text_condition.line_selection(text, pieces, attrs,
                                                                                        codec.window_length)]
    return _fit_categorical(codec, domain, text_condition.categorical_only(domain, kept, text), train_config,
                            backend_cls), text


def _for_backend(spec, backend_cls, capability: str, selection, refusal: str, without: str):
    """``spec`` when the backend declares ``capability``; else None under ``auto`` (``without`` logged with the
    spec's description and the backend's name) and a ConfigError (``refusal`` after the backend's name) when
    asked for by name."""
    if backend_cls is None or getattr(backend_cls, capability, False):
        return spec
    if str(selection).strip().lower() != "auto":
        raise ConfigError(f"backend {backend_cls.name!r} {refusal}")
    log.info(without, spec.describe(), backend_cls.name)
    return None


def _fit_categorical(codec, domain, train_attrs: list[dict], train_config, backend_cls=None) -> ConditionSpec | None:
    """The categorical conditions from the training pieces' attributes (the augmentation's changes handled)."""
    changed = set(domain.attributes_changed_by(codec))
    moving = _moving_attributes(codec, domain, changed, train_attrs)
    changed -= moving
    asked = {n.strip() for n in str(train_config.conditions).split(",")}
    if changed & asked:
        raise ConfigError(f"train.conditions: the codec's augmentation changes {', '.join(sorted(changed & asked))}"
                          f" (e.g. codec.transpose); turn it off or condition on other attributes")
    if changed and any(any(k in changed for k in a) for a in train_attrs):
        log.info("conditions: %s left out (the codec's augmentation changes it)", ", ".join(sorted(changed)))
        train_attrs = [{k: v for k, v in a.items() if k not in changed} for a in train_attrs]
    spec = ConditionSpec.fit(train_attrs, train_config.conditions, train_config.condition_dropout,
                             train_config.condition_size,
                             "prime" if domain.conditions_as_prime else "embedding")
    if spec is not None and moving & set(spec.names):
        spec = _with_moved_values(spec, codec, domain, moving)
        log.info("conditions: %s moves with the codec's augmentation (each training window's value is moved "
                 "with it)", ", ".join(sorted(moving & set(spec.names))))
    if spec is not None and spec.conditions_backend:
        spec = _for_backend(
            spec, backend_cls, "accepts_conditions", train_config.conditions,
            f"cannot be conditioned (it does not declare accepts_conditions); train.conditions="
            f"{train_config.conditions} asks for {spec.describe()}. Use --set train.conditions=none",
            "conditions: the data carries %s, but backend %r takes no conditions: training unconditionally")
    if spec is not None:
        how = ("generate --condition primes with them" if spec.mode == "prime" else
               f"condition dropout {spec.dropout:g}")
        log.info("conditions: on %s (%s); --set train.conditions=none turns them off", spec.describe(), how)
        words = getattr(domain, "provenance_words", {}) or {}
        for name, counts in spec.notes:  # internal keys (``_key_source``) only as the domain words them
            if name in words:
                log.info("conditions: %s: %s", words[name], ", ".join(f"{k} {v}" for k, v in counts))
    elif any(train_attrs):
        log.info("conditions: none (train.conditions=%s)", train_config.conditions)
    return spec


# -- labels that move with the training augmentation (a key transposed with the notes) --------------------------------
def _changes(codec) -> tuple:
    changes = getattr(codec, "augmentation_changes", None)
    return tuple(changes()) if callable(changes) else ()


def _moving_attributes(codec, domain, changed: set, train_attrs: list[dict]) -> set:
    """Of the attributes the augmentation changes, those the domain moves for every training value and every
    change the codec reports (``Domain.moved_attribute``); the others are left out, as before."""
    changes = _changes(codec)
    if not changed or not changes:
        return set()
    out = set()
    for name in changed:
        values = {str(a[name]) for a in train_attrs if a.get(name) not in (None, "")}
        if values and all(domain.moved_attribute(name, v, c) is not None for v in values for c in changes):
            out.add(name)
    return out


def _with_moved_values(spec: ConditionSpec, codec, domain, moving: set) -> ConditionSpec:
    """``spec`` with each moving attribute's vocabulary closed under the codec's changes: the values reached
    only by moving a training value come after the training values, with count 0 (training indices unchanged)."""
    attributes = []
    for a in spec.attributes:
        if a.name in moving:
            reached = {domain.moved_attribute(a.name, v, c) for v in a.values for c in _changes(codec)}
            extra = sorted(reached - set(a.values) - {None})
            a = Attribute(a.name, a.values + tuple(extra), a.counts + (0,) * len(extra))
        attributes.append(a)
    return dataclasses.replace(spec, attributes=tuple(attributes))


def move_tables(spec: ConditionSpec | None, codec, domain) -> tuple[tuple, torch.Tensor] | None:
    """For training batches (``data.make_batch``): the codec's changes and a ``[changes, A, V]`` table that
    maps each attribute's index to its index after that change (identity for attributes that do not move,
    0 = unknown for a value moved out of the vocabulary); None when no attribute of ``spec`` moves."""
    if spec is None or not spec.conditions_backend:
        return None
    changes = _changes(codec)
    moving = set(domain.attributes_changed_by(codec)) & set(spec.names) if changes else set()
    if not moving:
        return None
    width = max(a.size for a in spec.attributes)
    table = torch.arange(width).repeat(len(changes), len(spec.attributes), 1)
    for j, a in enumerate(spec.attributes):
        if a.name in moving:
            for c, change in enumerate(changes):
                for i, value in enumerate(a.values, start=1):
                    table[c, j, i] = a.index(domain.moved_attribute(a.name, value, change))
    return changes, table


def moved_indices(rows: torch.Tensor, changes: list, tables: tuple[tuple, torch.Tensor]) -> torch.Tensor:
    """``rows`` ``[B, A]`` of windows augmented by ``changes`` (one per window; None = unchanged) with each
    attribute's index moved along (``move_tables``)."""
    known, table = tables
    position = {c: i for i, c in enumerate(known)}
    out = rows.clone()
    for b, change in enumerate(changes):
        if change is not None and change in position:
            out[b] = table[position[change], torch.arange(rows.shape[1]), rows[b]]
    return out


# -- from encoded pieces to per-window indices ------------------------------------------------------------------------
def piece_indices(spec: ConditionSpec | None, attrs: list[dict]) -> torch.Tensor | None:
    if spec is None or not spec.conditions_backend:
        return None
    rows = np.array([spec.indices(a) for a in attrs], dtype=np.int64)  # numpy: torch.tensor of 50,000 lists is slow
    return torch.from_numpy(rows.reshape(len(attrs), len(spec.attributes)))
