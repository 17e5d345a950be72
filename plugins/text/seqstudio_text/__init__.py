"""seqstudio text domain: UTF-8 text and ABC folk tunes as character or BPE tokens, and ABC tunes back to MIDI.

The core finds this package through the ``seqstudio.domains`` entry point; nothing needs importing by hand.
"""

from .bpe import BPECodec
from .char import CharCodec
from .document import Document
from .domain import TextDomain

__all__ = ["TextDomain", "CharCodec", "BPECodec", "Document"]
