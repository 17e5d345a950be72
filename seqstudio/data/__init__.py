"""From a folder of files to training windows, through one front door: ``prepare(spec) -> Prepared`` (the windows
of each split and the run's ``Fitted`` value). Its modules, one job each, in the order a preparation runs:
``folders`` (what a folder says about itself), ``discovery``, ``hashing``, ``splitting``, ``fitting`` and
``fitted``, ``encode`` (with ``cache_writer`` and ``pieces``), ``windows``, ``batching``; ``snapshot`` stores a
finished preparation for the next start; ``preparation`` runs them."""

from ..cache import cache_dir
from ..encoding import REAL_DTYPE, SPLITS, assign_collection, codec_class, make_codec
from ..gc_pause import gc_paused, gc_paused_call
from .batching import batch_indices, make_batch
from .cache_writer import SHARD_BYTES
from .discovery import find_files, given_split
from .encode import CACHE_VERSION, codec_key, encode_files
from .fitted import Fitted
from .folders import FOLDER_INFO, folder_codec, folder_info, write_folder_info
from .pieces import EncodedFiles, Piece, pieces_for_split, read_samples
from .preparation import Prepared, prepare
from .splitting import SplitFiles, split_files
from .windows import WindowSet

__all__ = ["prepare", "Prepared", "Fitted", "WindowSet", "batch_indices", "make_batch", "split_files",
           "SplitFiles", "find_files", "given_split", "encode_files", "codec_key", "EncodedFiles", "Piece",
           "pieces_for_split", "read_samples", "folder_info", "folder_codec", "write_folder_info", "FOLDER_INFO",
           "cache_dir", "make_codec", "codec_class", "assign_collection", "REAL_DTYPE", "SPLITS", "CACHE_VERSION",
           "SHARD_BYTES", "gc_paused", "gc_paused_call"]
