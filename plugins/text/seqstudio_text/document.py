"""Reading text files safely: the text domain's sample type and the checks that give bad files a clear error.

A sample is a :class:`Document`, a ``str`` that also knows its ``format`` (``"abc"`` for ABC tunes, ``"text"``
otherwise). The format decides the extension of written files, whether ABC metrics apply, and how it is
cleaned on reading; everything else treats a document as the plain string it is.
"""

from __future__ import annotations

from pathlib import Path

from seqstudio import safe_io
from seqstudio.errors import DataError

FORMATS = ("text", "abc")
MAX_TEXT_BYTES = 256 << 20  # one text file; a file is read whole, so this bounds a reader's memory


class Document(str):
    """The text of one file (or one generated sample), tagged with its format."""

    format: str

    def __new__(cls, text: str = "", format: str = "text"):
        if format not in FORMATS:
            raise ValueError(f"unknown document format {format!r}; valid: {', '.join(FORMATS)}")
        obj = super().__new__(cls, text)
        obj.format = format
        return obj

    def __reduce__(self):  # pickles (spawned workers) keep the format
        return (Document, (str(self), self.format))


def decode_bytes(data: bytes, path: Path, latin1_fallback: bool = False) -> str:
    """UTF-8 text with ``\\n`` line ends, or a ``DataError`` naming ``path`` (binary, not UTF-8, empty).

    ``latin1_fallback``: read a file that is not UTF-8 as Latin-1 instead (old ABC collections), for one-off
    conversions; training data must be UTF-8, so a corpus never mixes encodings silently.
    """
    if b"\x00" in data:
        raise DataError(f"{path}: binary file (contains NUL bytes), not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not latin1_fallback:
            raise DataError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                            f"convert it to UTF-8 first") from None
        text = data.decode("latin-1")
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DataError(f"{path}: empty file (no text)")
    return text


def read_text(path: Path, latin1_fallback: bool = False) -> str:
    """The checked text of ``path`` (see :func:`decode_bytes`). Only a regular file of at most ``MAX_TEXT_BYTES``
    is read: a FIFO, a device (``/dev/zero``) or a ``/proc`` file is a ``DataError``, never a hang."""
    path = Path(path)
    data = safe_io.read_bytes_limited(path, MAX_TEXT_BYTES, "text file")
    return decode_bytes(data, path, latin1_fallback)
