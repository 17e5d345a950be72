"""ABC tunes: folk-rnn-style cleaning for training, a validity check, and conversion to MIDI through music21.

Cleaning (applied when the text domain reads an ``.abc`` file) keeps what a tune generator should learn and
drops what is noise to it, as in folk-rnn (Sturm et al. 2016):

* per tune, the header fields ``X:`` (renumbered 1, 2, ... within the file), ``M:`` (meter), ``L:`` (unit note
  length) and ``K:`` (key, which ends the header); titles, origins, notes, sources, tempo and every other
  header field are dropped;
* in the tune body, the music lines plus inline ``M:``/``L:``/``K:``/``P:``/``V:`` changes; lyrics (``w:``,
  ``W:``) and other fields are dropped;
* comments (``%`` to the end of a line), ``%%`` directives, blank lines inside a tune, the file header before
  the first ``X:`` and surrounding whitespace are removed; ``M: 4/4`` becomes ``M:4/4``;
* tunes are separated by one blank line and a tune without a ``K:`` field is dropped.

A tune is *valid* when music21 parses it as ABC and the parsed score converts to a MIDI file with at least one
note — the test generated tunes are held to (``abc_valid`` in the text domain's metrics).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import math
import re
import warnings

from seqstudio import safe_io, score_limits
from seqstudio.errors import DataError

PARSE_TIMEOUT = 5.0  # seconds; a real Essen tune takes about 0.03 s
HEADER_KEEP = ("M", "L")
BODY_FIELDS_KEEP = ("M", "L", "K", "P", "V")
# Field letters that can start a body line; A-G and a-g are not among them, as those start notes.
_BODY_FIELD = re.compile(r"^([H-Zmrsw]):(.*)$")
_HEADER_FIELD = re.compile(r"^([A-Za-z]):(.*)$")
_TUNE_START = re.compile(r"(?m)^(?=X:)")


class AbcInvalid(DataError):
    """Text that music21 cannot parse as ABC or that holds no notes."""


def _strip_comment(line: str) -> str:
    """The line without its ``%`` comment (an escaped ``\\%`` is kept)."""
    match = re.search(r"(?<!\\)%", line)
    return line[: match.start()] if match else line


def _clean_tune(block: str) -> list[str] | None:
    """Kept lines of one tune (without its ``X:`` line), or None when it has no ``K:`` field."""
    kept, in_body = [], False
    for raw in block.split("\n")[1:]:
        if raw.lstrip().startswith("%%"):
            continue
        line = _strip_comment(raw).strip()
        if not line:
            continue
        field = (_BODY_FIELD if in_body else _HEADER_FIELD).match(line)
        if field:
            name, value = field.group(1), field.group(2).strip()
            if not in_body and name == "K":
                kept.append(f"K:{value}")
                in_body = True
            elif name in (BODY_FIELDS_KEEP if in_body else HEADER_KEEP):
                kept.append(f"{name}:{value}")
            continue
        if not in_body:  # music before any K: line is not a well-formed tune
            return None
        kept.append(line)
    return kept if in_body else None


def clean_abc(text: str) -> str:
    """Cleaned ABC (see the module docstring): one or more tunes, each ending with a newline, ``""`` if none."""
    blocks = [b for b in _TUNE_START.split(text) if b.startswith("X:")]
    if not blocks and re.search(r"(?m)^K:", text):
        blocks = ["X:1\n" + text]  # a lone tune written without its X: line
    tunes = [lines for lines in (_clean_tune(b) for b in blocks) if lines is not None]
    return "\n".join(f"X:{i}\n" + "\n".join(lines) + "\n" for i, lines in enumerate(tunes, 1))


# -- parsing and conversion ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet():
    """music21 warns and prints freely; only the outcome matters here."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), \
            contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _reason(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def abc_to_midi_bytes(text: str, timeout: float | None = PARSE_TIMEOUT) -> bytes:
    """The first tune of ``text`` as a standard MIDI file (bytes); ``AbcInvalid`` when it does not parse.

    The text is always parsed as data (``converter.parseData``), never taken for a file name. Only the first
    tune is handed to music21 (with the file header before it), after ``score_limits.check_abc`` found it
    within bounds: music21 can spend minutes and gigabytes on absurd input (a note 8316 units long, a metre of
    10^8 beats, thousands of voices, which a generator may write). What passes is parsed under a time limit of
    ``timeout`` seconds (or the tune's size-based budget, if smaller; any thread), after which the tune counts as
    invalid. The MIDI has its ticks rescaled when it is too long for pretty_midi (music21 writes 10,080 per
    quarter).
    """
    tune = score_limits.first_abc_tune(text)
    if not re.search(r"(?m)^K:", tune):
        raise AbcInvalid("not an ABC tune (no K: field)")
    try:
        notes = score_limits.check_abc(tune, "the tune")
    except DataError as exc:
        raise AbcInvalid(str(exc).removeprefix("the tune: ")) from None
    budget = score_limits.abc_budget(notes)
    limit = min(timeout, budget) if timeout else budget
    import music21.converter  # noqa: F401 - imported before the clock starts: an import cut short breaks music21
    import music21.midi.translate  # noqa: F401
    try:
        with safe_io.time_limit(limit, "music21"):
            midi = _abc_to_midi_bytes(tune)
    except AbcInvalid:
        raise
    except DataError:
        raise AbcInvalid(f"music21 did not finish parsing it within {limit:g} s") from None
    try:
        return score_limits.midi_bytes_fit_pretty_midi(midi)
    except Exception as exc:
        raise AbcInvalid(f"music21 wrote an unreadable MIDI file ({_reason(exc)})") from None


def _abc_to_midi_bytes(text: str) -> bytes:
    from music21 import converter, stream
    from music21.midi import translate

    if not re.search(r"(?m)^K:", text):
        raise AbcInvalid("not an ABC tune (no K: field)")
    try:
        with _quiet():
            score = converter.parseData(str(text), format="abc")
            if isinstance(score, stream.Opus):
                scores = list(score.scores)
                if not scores:
                    raise AbcInvalid("no tune in the text")
                score = scores[0]
            _unshare_signatures(score)
            return translate.streamToMidiFile(score).writestr()
    except AbcInvalid:
        raise
    except Exception as exc:  # music21 raises anything from ABCHandlerException to ZeroDivisionError
        raise AbcInvalid(f"not valid ABC ({_reason(exc)})") from None


def _unshare_signatures(score) -> None:
    """Give every measure its own time/key signature objects.

    music21's ABC reader splits a bar longer than its meter into a bar with a temporary meter and then puts the
    *same* signature object back into several measures; its MIDI writer then refuses the score ("object is
    already found in this Stream"). Irregular bars are common in the Essen collection (about one tune in eight),
    and the tunes are valid ABC, so the shared objects are copied before conversion.
    """
    from music21 import key, meter, stream

    seen = set()
    for measure in score.recurse().getElementsByClass(stream.Measure):
        for element in list(measure.getElementsByClass((meter.TimeSignature, key.KeySignature))):
            if id(element) in seen:
                measure.replace(element, copy.deepcopy(element))
            else:
                seen.add(id(element))


@dataclasses.dataclass
class AbcCheck:
    """Outcome of :func:`check_abc`: ``valid`` with the MIDI's note count and pitch range, or the ``reason``."""

    valid: bool
    notes: int = 0
    pitch_range: float = math.nan
    reason: str = ""


def midi_notes(midi: bytes) -> list[int]:
    """Pitches of every pitched note in a MIDI file (read with mido: no limit on the file's length in ticks)."""
    import mido

    with _quiet():
        parsed = mido.MidiFile(file=io.BytesIO(midi))
    return [m.note for track in parsed.tracks for m in track
            if m.type == "note_on" and m.velocity > 0 and m.channel != 9]


def check_abc(text: str, timeout: float | None = PARSE_TIMEOUT) -> AbcCheck:
    """Whether ``text`` parses as ABC *and* converts to a MIDI file with at least one note (within ``timeout``
    seconds)."""
    try:
        pitches = midi_notes(abc_to_midi_bytes(text, timeout))
    except AbcInvalid as exc:
        return AbcCheck(False, reason=str(exc))
    except Exception as exc:  # a MIDI file music21 wrote but that does not read back
        return AbcCheck(False, reason=f"MIDI unreadable ({_reason(exc)})")
    if not pitches:
        return AbcCheck(False, reason="no notes")
    return AbcCheck(True, len(pitches), float(max(pitches) - min(pitches)))


def abc_to_midi(text: str, timeout: float | None = PARSE_TIMEOUT) -> bytes:
    """Like :func:`abc_to_midi_bytes`, but a tune without notes is an error too."""
    midi = abc_to_midi_bytes(text, timeout)
    if not midi_notes(midi):
        raise AbcInvalid("the tune has no notes")
    return midi
