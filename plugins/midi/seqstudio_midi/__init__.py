"""seqstudio MIDI domain: reads MIDI and notation files, encodes them as piano rolls or event tokens.

The core finds this package through the ``seqstudio.domains`` entry point; nothing needs importing by hand.
"""

from seqstudio.lazy import lazy_names

__all__ = ["MidiDomain", "PianoRollCodec", "EventCodec", "NoteCodec"]

# The classes load on first use, so a recipe source of this package never pays for torch's import.
_LAZY = {"MidiDomain": "domain", "PianoRollCodec": "pianoroll", "EventCodec": "events", "NoteCodec": "notes"}

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
