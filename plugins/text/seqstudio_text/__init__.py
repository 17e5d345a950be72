"""seqstudio text domain: UTF-8 text and ABC folk tunes as character or BPE tokens, and ABC tunes back to MIDI.

The core finds this package through the ``seqstudio.domains`` entry point; nothing needs importing by hand.
"""

from seqstudio.lazy import lazy_names

__all__ = ["TextDomain", "CharCodec", "BPECodec", "Document"]

# The classes load on first use, so a recipe source of this package never pays for torch's import.
_LAZY = {"TextDomain": "domain", "CharCodec": "char", "BPECodec": "bpe", "Document": "document"}

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
