"""Fitting, once, on the train split, in one place: the codec on the raw training samples (before anything can be
encoded), then, from the encoded training pieces, the decoding defaults, the text condition and the categorical
conditions; the product is one ``Fitted`` value."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .. import conditions as conditions_mod
from ..domain import Codec, Domain
from ..errors import DataError
from ..spec import check_informative
from .fitted import Fitted
from .pieces import read_samples


def fit_codec(codec: Codec, domain: Domain, train_files: list[Path], fractions: tuple[float, float]) -> None:
    """The codec's own state (a vocabulary, a scale) from the raw training samples, unless it has one; then the
    check that every part of its spec carries information."""
    if not codec.is_fitted:
        samples = read_samples(train_files, domain, "train", fractions)
        if not samples:
            raise DataError(f"none of the {len(train_files)} training files could be read")
        codec.fit(samples)
    check_informative(codec.spec, codec.name)


def fit_run(codec: Codec, domain: Domain, pieces: list, attrs: list[dict], train_config, backend_cls=None,
            given: Fitted | None = None) -> Fitted:
    """The run's ``Fitted`` from the training ``pieces`` and their attribute dicts.

    ``given`` (a resumed run's): kept as it is, but for decoding defaults it lacks (a run directory from before
    they existed), which are learned here as for a new run. Else the decoding defaults, then the conditions of
    both kinds (``conditions.fit_for_run``)."""
    if not codec.decoding_state():  # decode's defaults from the pieces' provenance
        codec.fit_decoding(attrs)
    if given is not None:
        return dataclasses.replace(given, decoding=dict(codec.decoding_state() or {}))
    conditions, text = conditions_mod.fit_for_run(codec, domain, pieces, attrs, train_config, backend_cls)
    return Fitted.of(codec, conditions, text)
