"""seqstudio MIDI domain: reads MIDI and notation files, encodes them as piano rolls or event tokens.

The core finds this package through the ``seqstudio.domains`` entry point; nothing needs importing by hand.
"""

from .domain import MidiDomain
from .events import EventCodec
from .notes import NoteCodec
from .pianoroll import PianoRollCodec

__all__ = ["MidiDomain", "PianoRollCodec", "EventCodec", "NoteCodec"]
