"""The front door: ``prepare(spec)`` turns the spec's data folder into training windows per split and one
``Fitted`` value, in a straight line:

    split the files (``splitting``) -> fit the codec on train (``fitting``) -> encode, from the cache when it can
    (``encode``) -> each split's pieces and their attributes (``pieces``) -> fit the run on train, once
    (``fitting``) -> cut each split into windows (``windows``)

An unchanged folder prepared the same way before is loaded from its stored preparation instead (``snapshot``)."""

from __future__ import annotations

import dataclasses

from .. import conditions as conditions_mod
from .. import text_condition as text_mod
from ..domain import Codec, Domain
from ..encoding import REAL_DTYPE, SPLITS
from ..errors import DataError
from ..folder_attributes import add_folder_attributes
from ..gc_pause import gc_paused_call
from .encode import encode_files
from .fitted import Fitted
from .fitting import fit_codec, fit_run
from .folders import folder_info
from .pieces import pieces_for_split
from .snapshot import Snapshot, captured_messages
from .splitting import SplitFiles, split_files
from .windows import WindowSet


@dataclasses.dataclass
class Prepared:
    """What ``prepare`` makes: the domain and the fitted codec it used, what the run learned (``fitted``, what
    ``codec.json`` stores), each split's files and its windows."""

    domain: Domain
    codec: Codec
    fitted: Fitted
    files: SplitFiles
    windows: dict[str, WindowSet]


@gc_paused_call  # a few objects per file and piece, all kept: no full collection meanwhile (gc_pause)
def prepare(spec, fitted: Fitted | None = None, splits=("train", "valid"), progress: bool = True,
            domain: Domain | None = None, codec: Codec | None = None) -> Prepared:
    """The windows of ``splits`` of the folder ``spec`` names, and the run's ``Fitted`` value.

    ``fitted``: what a run learned before (a resumed run, or a trained run evaluated on held-out data): the codec
    starts from it and nothing is fitted again. Without it everything is fitted on the train split (which must
    then be among ``splits`` for the conditions and the text). ``codec``: a codec to use (else the spec's)."""
    domain = domain or spec.make_domain()
    codec = codec or spec.make_codec()
    if fitted is not None:
        fitted.apply(codec)
    snapshot = Snapshot.for_run(spec, domain, codec, fitted, splits)
    loaded = snapshot.load(codec) if snapshot is not None else None
    if loaded is not None:
        fitted, files, sets = loaded
    else:
        with captured_messages() as messages:
            fitted, files, sets = prepare_fresh(spec, domain, codec, fitted, splits, progress)
        if snapshot is not None:
            snapshot.save(fitted, files, sets, messages, REAL_DTYPE)
    if "train" in sets:  # conditions: a label that moves with the augmentation (a key transposed with the notes)
        sets["train"].condition_moves = conditions_mod.move_tables(fitted.conditions, codec, domain)
    return Prepared(domain, codec, fitted, files, sets)


def prepare_fresh(spec, domain: Domain, codec: Codec, given: Fitted | None, splits, progress: bool):
    """``(fitted, files, windows)`` computed from the folder (the path ``prepare`` takes without a snapshot)."""
    t = spec.train
    fractions = (t.valid_fraction, t.test_fraction)
    files = split_files(spec.data_path, domain, *fractions)
    # A many-sample file contributes to every split, whichever split the file itself landed in.
    collections = [f for s in SPLITS for f in files[s] if domain.is_collection(f)]
    fit_codec(codec, domain, sorted(set(files["train"]) | set(collections)), fractions)
    wanted = sorted({f for s in splits for f in files[s]} | set(collections), key=lambda p: p.parts)
    encoded = encode_files(wanted, spec.domain, codec, workers=t.workers, progress=progress,
                           fractions=fractions, hashes=files.hashes)
    add_folder_attributes(encoded, spec.data_path,  # conditions: attributes of the file names
                          folder_info(spec.data_path).get("attributes"))
    shares = {}
    for split in splits:  # train first: it may take a readable file from valid or test (``pieces_for_split``)
        shares[split] = pieces_for_split(encoded, files, split)
        if split == "train" and not shares[split][0]:
            raise DataError(f"none of the {len(files['train'])} training files in {spec.data['path']} "
                            f"could be read (see the warnings above)")
    if "train" in shares:
        fitted = fit_run(codec, domain, *shares["train"], t, spec.backend_class, given)
    else:
        fitted = given or Fitted.of(codec)
    return fitted, files, {split: split_windows(fitted, domain, codec, pieces, attrs, split)
                           for split, (pieces, attrs) in shares.items()}


def split_windows(fitted: Fitted, domain: Domain, codec: Codec, pieces: list, attrs: list[dict],
                  split: str) -> WindowSet:
    """One split's windows with each window's condition indices (and, for a text run, its whole line and text)."""
    pieces, attrs, texts = text_mod.whole_lines(fitted.text, pieces, attrs, codec.window_length, split)
    indices = conditions_mod.piece_indices(fitted.conditions, text_mod.categorical_only(domain, attrs, fitted.text))
    windows = WindowSet.from_pieces(pieces, codec, whole=texts is not None, conditions=indices)
    windows.texts = texts
    return windows
