"""The MIDI plugin's recipe source types (``seqstudio.recipe_sources`` entry points):

* ``music21-corpus`` — files shipped inside the music21 package (no network): ``glob`` relative to its corpus
  folder; ``split_abc: true`` cuts multi-tune ABC books into one tune per file first (the text domain's
  ``essen-folk-abc`` recipe uses it too); ``skip_free_meter: true`` then leaves out the tunes whose header says
  they have no metre (``M: none`` in the Essen collection): music21 would write them as 4/4, and a run
  conditioned on the metre would learn that label for them.
* ``pitch-frames-json`` — one JSON file (``--source FILE``, checked against ``sha256``) mapping split names to
  lists of pieces, each piece a list of frames, each frame a list of MIDI pitches sounding for one grid step
  (``steps_per_quarter`` steps per quarter note; ``splits`` maps train/valid/test to the file's keys). Written as
  ``train/ valid/ test/`` folders of MIDI files, a pitch held over consecutive frames becoming one note, so the
  piano-roll codec gives the frames back.

They live here, not in the core, because they know music21's layout and the MIDI format.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from seqstudio.errors import DataError
from seqstudio.recipe_sources import RecipeSource, glob_files, split_quotas, user_file


def music21_corpus_dir() -> Path:
    """The corpus folder inside the installed music21 package."""
    import music21

    return Path(music21.__file__).resolve().parent / "corpus"


FREE_METER = re.compile(r"(?mi)^M:\s*(none|frei)")


def split_abc_book(path: Path, out_dir: Path, skip_free_meter: bool = False) -> list[Path]:
    """Cut a multi-tune ABC file into one file per tune (each keeps the book's header lines); with
    ``skip_free_meter`` a tune whose first ``M:`` field is ``none`` or ``FREI...`` is left out."""
    text = path.read_text(encoding="latin-1")
    parts = re.split(r"(?m)^(?=X:)", text)
    header, tunes = (parts[0], parts[1:]) if parts and not parts[0].startswith("X:") else ("", parts)
    paths = []
    for tune in tunes:
        if skip_free_meter and (m := FREE_METER.search(tune)) and not re.search(r"(?m)^M:", tune[: m.start()]):
            continue
        number = re.match(r"X:\s*(\d+)", tune)
        name = f"{path.stem}-{number.group(1) if number else len(paths)}.abc"
        target = out_dir / name
        target.write_text(header + tune, encoding="utf-8")
        paths.append(target)
    return paths


class Music21Corpus(RecipeSource):
    """``music21-corpus``: ``glob`` under music21's corpus; ``split_abc`` for one tune per file."""

    needs_source = False

    def files(self, source: Path | None, scratch: Path) -> list[Path]:
        files = glob_files(self.recipe, music21_corpus_dir())
        if self.options.get("split_abc"):
            skip = bool(self.options.get("skip_free_meter"))
            files = [tune for book in files for tune in split_abc_book(book, scratch, skip)]
        return files


class PitchFramesJson(RecipeSource):
    """``pitch-frames-json``: the user's JSON of pitch frames per split, written as split folders of MIDI."""

    writes_dataset = True

    def write(self, domain, dest: Path, source: Path | None, limit: int, progress: bool) -> int:
        from tqdm.auto import tqdm

        from .frames import frames_to_midi

        path = user_file(self.recipe, source)
        try:
            raw = json.loads(path.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"--source {path}: not valid JSON ({exc})") from None
        splits = self.options.get("splits") or {"train": "train", "valid": "valid", "test": "test"}
        if not isinstance(raw, dict) or any(key not in raw for key in splits.values()):
            raise DataError(f"--source {path}: expected a JSON object with keys {', '.join(splits.values())}")
        steps_per_quarter = int(self.options.get("steps_per_quarter", 1))
        tempo = float(self.options.get("tempo", 120.0))
        quota = split_quotas({split: len(raw[key]) for split, key in splits.items()}, limit)  # limit: files in all
        jobs = [(split, i, piece) for split, key in splits.items() for i, piece in enumerate(raw[key][: quota[split]])]
        for split in splits:
            (dest / split).mkdir(parents=True, exist_ok=True)
        for split, i, piece in tqdm(jobs, desc=f"building {self.recipe.name}", unit="file", disable=not progress):
            pm = frames_to_midi(piece, steps_per_quarter, tempo)
            domain.write(pm, dest / split / f"{split}-{i:03d}{domain.output_extension}")
        if not jobs:
            raise DataError(f"recipe {self.recipe.name!r}: {path} holds no pieces")
        return len(jobs)
