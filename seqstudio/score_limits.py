"""Bounds on music files before music21 or pretty_midi expand them, shared by the MIDI and text domains.

music21 takes minutes (and gigabytes) on scores that are small files: an ABC note 10^9 units long, a metre of
10^8 beats, 3,000 voices, a MusicXML with 50,000 notes, an ``.mxl`` holding a gigabyte of zeros. pretty_midi
refuses a MIDI file whose last tick is past 10^7, which music21's 10,080 ticks per quarter reach after about
248 bars of 4/4, and builds arrays as long as the piece. So every score is measured cheaply first (a streaming
XML count, a regular-expression scan of ABC and Humdrum text, the MIDI event list) and refused with a one-line
``DataError`` saying which bound it breaks; what passes is parsed under a time limit proportional to its size.

The bounds are far above real music: a Beethoven string quartet in music21's corpus has about 20,000 notes
and 4,500 measures (summed over the four parts) and lasts about 6,000 quarter notes.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from . import safe_io
from .errors import DataError

MAX_NOTES = 40_000  # notes music21 may parse in one score (about 2x a long string quartet)
MAX_MEASURES = 15_000  # <measure> elements, summed over the parts
MAX_TEXT_BYTES = 64 << 20  # a MusicXML / ABC / Humdrum file
MAX_MXL_BYTES = 128 << 20  # what an .mxl may expand to
MAX_MIDI_BYTES = 32 << 20
MAX_MIDI_NOTES = 500_000
MAX_QUARTERS = 20_000  # length of one piece in quarter notes (over 2.5 hours at 120 bpm)
MIDI_MAX_TICK = 10_000_000  # pretty_midi's MAX_TICK: it refuses files with a later event
MAX_REPEATS = 500  # repeat signs in one score: music21 expands each into copies of the music
# ABC: music21's ABC path is slow (about 5 ms a note, more with repeats and key changes), and ABC tunes are short
# (an O'Neill's or Essen tune has 50-500 notes), so its bounds are tighter; values music21 expands into absurd
# work or memory are bounded too, far above real tunes
MAX_ABC_NOTES = 10_000
MAX_ABC_BARS = 5_000
ABC_MAX_NUMBER = {"length": 128, "metre": 64, "unit": 256, "voices": 32, "tuplet": 32, "rest_bars": 256,
                  "repeats": 128, "changes": 64}


def parse_budget(notes: int, base: float = 60.0, per_note: float = 0.05) -> float:
    """CPU seconds music21 may take for a score of ``notes`` notes: by default 60 s + 50 ms per note, never more
    than ``safe_io.read_timeout()``. music21's MIDI writer is quadratic in ties and repeats, not in notes: of the
    Beethoven quartets in its corpus, opus 132 (about 20,000 notes) takes about 60 s of CPU time, opus 18 no. 4
    (about 13,700) more than 400 s. ABC passes its own, smaller figures (``abc_budget``)."""
    budget = base + round(per_note * max(notes, 0))
    limit = safe_io.read_timeout()
    return min(budget, limit) if limit else budget


def _too_many(where: str, count: int, what: str, limit: int) -> DataError:
    return DataError(f"{where}: {count:,} {what}, more than the {limit:,} one file may have (a bound on the time "
                     f"and memory reading it takes)")


# -- MusicXML ----------------------------------------------------------------------------------------------------
def _count_musicxml(data: bytes, where: str) -> int:
    limits = {"note": MAX_NOTES, "measure": MAX_MEASURES, "repeat": MAX_REPEATS, "ending": MAX_REPEATS}
    return safe_io.count_xml_elements(data, limits, where)["note"]


def _mxl_rootfile(archive: zipfile.ZipFile) -> str | None:
    names = archive.namelist()
    if "META-INF/container.xml" in names:
        container = archive.read("META-INF/container.xml")[:1 << 20].decode("utf-8", "replace")
        match = re.search(r'full-path\s*=\s*["\']([^"\']+)["\']', container)
        if match and match.group(1) in names:
            return match.group(1)
    scores = [n for n in names if not n.startswith("META-INF/") and n.lower().endswith((".xml", ".musicxml"))]
    return scores[0] if scores else None


def check_musicxml(path: Path) -> int:
    """Notes in a MusicXML file (``.xml``, ``.musicxml`` or compressed ``.mxl``), or a ``DataError`` when it is
    too big, a zip bomb, malformed or holds entity declarations. Reads at most the declared sizes."""
    path = Path(path)
    if path.suffix.lower() != ".mxl":
        return _count_musicxml(safe_io.read_bytes_limited(path, MAX_TEXT_BYTES, "MusicXML file"), str(path))
    safe_io.check_regular_file(path)
    try:
        with zipfile.ZipFile(path) as archive:
            safe_io.check_zip_members(path, archive, MAX_MXL_BYTES)
            member = _mxl_rootfile(archive)
            if member is None:
                raise DataError(f"{path}: no MusicXML score inside the .mxl archive")
            data = archive.read(member)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .mxl archive ({exc})") from None
    return _count_musicxml(data, str(path))


# -- ABC -----------------------------------------------------------------------------------------------------------
def abc_budget(notes: int) -> float:
    """Seconds music21 may take for an ABC tune: 15 s + 6 ms per note (at most 75 s)."""
    return parse_budget(notes, base=15.0, per_note=0.006)


_TUNE_START = re.compile(r"(?m)^X:")
_FIELD_LINE = re.compile(r"(?m)^([A-Za-z]):(.*)$")
_INLINE_FIELD = re.compile(r"\[([A-Za-z]):([^\]\n]*)\]")
_NOISE = re.compile(r'"[^"\n]*"|![^!\n]*!|\+[^+\n]*\+|%[^\n]*')
_NOTE = re.compile(r"([_=^]*)([A-Ga-gzx])([,']*)(\d*)(/*)(\d*)")
_MULTI_REST = re.compile(r"[ZX](\d*)")
_TUPLET = re.compile(r"\((\d+)")
_REPEAT = re.compile(r":\||\|:|::|\|\s*\[?\d")
_INT = re.compile(r"\d+")


def first_abc_tune(text: str) -> str:
    """The file header (anything before the first ``X:``) and the first tune: all music21 converts of a
    file, without parsing a whole tune book to get there."""
    starts = [m.start() for m in _TUNE_START.finditer(text)]
    return text[: starts[1]] if len(starts) > 1 else text


def check_abc(text: str, where: str) -> int:
    """Notes in ABC ``text`` (scan it with :func:`first_abc_tune` first for one tune), or a ``DataError`` naming
    the field or note that would make music21 grind: too many notes or bars, a note or rest of absurd length, a
    metre, unit length or tuplet out of bounds, too many voices."""
    limits = ABC_MAX_NUMBER
    fields = [(m.group(1), m.group(2)) for m in _FIELD_LINE.finditer(text)]
    fields += [(m.group(1), m.group(2)) for m in _INLINE_FIELD.finditer(text)]
    voices, changes = set(), 0
    body_started = False
    for line in text.split("\n"):
        if line.startswith("K:"):
            changes += body_started
            body_started = True
        elif body_started and line[:2] in ("M:", "L:"):
            changes += 1
    changes += len(_INLINE_FIELD.findall(text))
    if changes > limits["changes"]:
        raise DataError(f"{where}: more than {limits['changes']} key, metre or unit-length changes")
    for name, value in fields:
        value = value.split("%", 1)[0].strip()
        numbers = [int(n) for n in _INT.findall(value)]
        if name == "M" and numbers and (max(numbers) > limits["metre"] or sum(numbers) > 4 * limits["metre"]):
            raise DataError(f"{where}: metre M:{value[:40]} is out of bounds (numbers up to {limits['metre']})")
        if name == "L" and numbers and max(numbers) > limits["unit"]:
            raise DataError(f"{where}: unit note length L:{value[:40]} is out of bounds "
                            f"(numbers up to {limits['unit']})")
        if name == "V":
            voices.add(value.split()[0] if value.split() else "")
            if len(voices) > limits["voices"]:
                raise DataError(f"{where}: more than {limits['voices']} voices (V: fields)")
    body = "\n".join(line for line in text.split("\n") if not _FIELD_LINE.match(line))
    body = _NOISE.sub(" ", _INLINE_FIELD.sub(" ", body))
    notes = 0
    for match in _NOTE.finditer(body):
        notes += 1
        for group in (4, 6):
            if match.group(group) and int(match.group(group)) > limits["length"]:
                raise DataError(f"{where}: note {match.group(0)[:20]!r} has a length out of bounds "
                                f"(numbers up to {limits['length']})")
        if len(match.group(5)) > 7:
            raise DataError(f"{where}: note {match.group(0)[:20]!r} is shorter than music21 can handle")
    if notes > MAX_ABC_NOTES:
        raise _too_many(where, notes, "notes", MAX_ABC_NOTES)
    repeats = len(_REPEAT.findall(body))
    if repeats > limits["repeats"]:
        raise DataError(f"{where}: {repeats} repeat signs, more than the {limits['repeats']} a tune may have")
    bars = body.count("|")
    for match in _MULTI_REST.finditer(body):
        rest = int(match.group(1) or 1)
        if rest > limits["rest_bars"]:
            raise DataError(f"{where}: a multi-bar rest of {rest} bars is out of bounds")
        bars += rest
    if bars > MAX_ABC_BARS:
        raise _too_many(where, bars, "bars", MAX_ABC_BARS)
    for match in _TUPLET.finditer(body):
        if int(match.group(1)) > limits["tuplet"]:
            raise DataError(f"{where}: tuplet ({match.group(1)} is out of bounds (up to {limits['tuplet']})")
    if re.search(r"[<>]{4,}", body):
        raise DataError(f"{where}: a broken rhythm of more than three > or < is out of bounds")
    return notes


# -- Humdrum **kern ----------------------------------------------------------------------------------------------
_KERN_NOTE = re.compile(r"[A-Ga-gr]")


def check_kern(text: str, where: str) -> int:
    """Notes in Humdrum text, or a ``DataError`` for too many notes or repeats, an absurd metre or expansion
    list."""
    notes = repeats = 0
    for line in text.split("\n"):
        if not line or line.startswith("!"):
            continue
        if line.startswith("*"):
            for token in line.split("\t"):
                if re.match(r"\*M\d", token) and any(int(n) > ABC_MAX_NUMBER["metre"] for n in _INT.findall(token)):
                    raise DataError(f"{where}: metre {token[:40]} is out of bounds")
                if token.startswith("*>") and token.count(",") >= 64:
                    raise DataError(f"{where}: an expansion list of more than 64 sections is out of bounds")
            continue
        if line.startswith("="):
            repeats += ":" in line
            if repeats > MAX_REPEATS:
                raise _too_many(where, repeats, "repeat barlines", MAX_REPEATS)
            continue
        for token in line.replace(" ", "\t").split("\t"):
            if token and token != "." and _KERN_NOTE.search(token):
                notes += 1
        if notes > MAX_NOTES:
            raise _too_many(where, notes, "notes", MAX_NOTES)
    return notes


# -- MIDI ----------------------------------------------------------------------------------------------------------
def _absolute(track) -> list[int]:
    ticks, now = [], 0
    for message in track:
        now += message.time
        ticks.append(now)
    return ticks


def _load(data: bytes):
    import mido

    midi = mido.MidiFile(file=io.BytesIO(data))
    absolute = [_absolute(track) for track in midi.tracks]
    return midi, absolute, max((ticks[-1] for ticks in absolute if ticks), default=0)


def checked_mido(data: bytes, where: str):
    """Parse MIDI bytes with mido and bound them: at most ``MAX_MIDI_NOTES`` notes, ``MAX_QUARTERS`` quarter notes
    long. A file whose last event is past pretty_midi's ``MIDI_MAX_TICK`` (music21 writes 10,080 ticks per quarter,
    so any score over about 248 bars of 4/4) gets its ticks divided by the smallest factor of its resolution that
    brings it under, each event rounded to the nearest new tick (10,080 ticks per quarter divided by up to 21 still
    leave 480 per quarter). Returns the ``mido.MidiFile``."""
    midi, absolute, last = _load(data)
    if midi.ticks_per_beat <= 0:
        raise DataError(f"{where}: SMPTE-timed MIDI files are not supported")
    notes = sum(1 for track in midi.tracks for m in track if m.type == "note_on" and m.velocity > 0)
    if notes > MAX_MIDI_NOTES:
        raise _too_many(where, notes, "notes", MAX_MIDI_NOTES)
    quarters = last / midi.ticks_per_beat
    if quarters > MAX_QUARTERS:
        raise DataError(f"{where}: lasts {quarters:,.0f} quarter notes, more than the {MAX_QUARTERS:,} a piece may "
                        f"(its last event is at tick {last:,}, {midi.ticks_per_beat} ticks per quarter)")
    if last >= MIDI_MAX_TICK:
        _rescale(midi, absolute, last)
    return midi


def _rescale(midi, absolute: list[list[int]], last: int) -> None:
    tpb = midi.ticks_per_beat
    need = -(-(last + 1) // (MIDI_MAX_TICK - 1))
    factor = next((k for k in range(need, tpb + 1) if tpb % k == 0), need)
    midi.ticks_per_beat = max(1, round(tpb / factor))
    for track, ticks in zip(midi.tracks, absolute):
        previous = 0
        for message, tick in zip(track, ticks):
            new = int(tick / factor + 0.5)
            message.time = new - previous
            previous = new


def midi_bytes_fit_pretty_midi(data: bytes) -> bytes:
    """``data`` itself when pretty_midi reads it, else the same music at fewer ticks per quarter (see
    ``checked_mido``), so MIDI files seqstudio writes read back in every tool."""
    midi, absolute, last = _load(data)
    if last < MIDI_MAX_TICK or midi.ticks_per_beat <= 0:
        return data
    _rescale(midi, absolute, last)
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()
