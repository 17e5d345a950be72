"""seqstudio MIDI domain: reads MIDI and notation files, encodes them as piano rolls or event tokens.

The core finds this package through the ``seqstudio.domains`` entry point; nothing needs importing by hand.
"""

__all__ = ["MidiDomain", "PianoRollCodec", "EventCodec", "NoteCodec"]
_LAZY = {"MidiDomain": "domain", "PianoRollCodec": "pianoroll", "EventCodec": "events", "NoteCodec": "notes"}


def __getattr__(name):
    """The classes load on first use, so a recipe source of this package never pays for torch's import."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
