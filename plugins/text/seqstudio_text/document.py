"""Reading text files safely: the text domain's sample type and the checks that give bad files a clear error.

A sample is a :class:`Document`, a ``str`` that also knows its ``format`` (``"abc"`` for ABC tunes, ``"text"``
otherwise). The format decides the extension of written files, whether ABC metrics apply, and how it is
cleaned on reading; everything else treats a document as the plain string it is.
"""

from __future__ import annotations

from pathlib import Path

from seqstudio.errors import DataError

FORMATS = ("text", "abc")


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
    """The checked text of ``path`` (see :func:`decode_bytes`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return decode_bytes(data, path, latin1_fallback)
