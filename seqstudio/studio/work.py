"""What a studio job does: the same library calls as ``seqstudio generate`` (``api.generate`` and
``api.write_samples``; ``api.generate``'s text path for lines of handwriting), into a folder the job owns.

An uploaded file is saved there under a name the studio chooses (``upload`` plus an extension the run's domain
reads) and then read by the library exactly as a file given to ``generate --prime`` / ``--style`` is: the
domain's bounded readers, the same checks as ``train``. The user's file name is only ever shown (in messages,
where the private folder's path is replaced by it).

Each sample is shown as the report page shows it (``Domain.gallery_item``: its picture, its audio, its text),
so the studio asks no domain questions of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import SeqStudioError
from .jobs import Job
from .models import MAX_LENGTH, Request, StudioModel, Upload

KINDS = {".mid": "MIDI", ".midi": "MIDI", ".svg": "SVG", ".wav": "WAV", ".png": "PNG", ".abc": "ABC",
         ".txt": "text", ".npz": "npz", ".inkml": "InkML"}


class Files:
    """The files a job made, by number: the only files the server hands out for it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.paths: list[Path] = []

    def add(self, path: Path | None) -> int | None:
        if path is None or not Path(path).is_file():
            return None
        self.paths.append(Path(path))
        return len(self.paths) - 1


def _save(upload: Upload, folder: Path, stem: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}{upload.suffix}"
    path.write_bytes(upload.data)
    return path


def _said(exc: SeqStudioError, folder: Path, uploads: dict[str, Upload]) -> SeqStudioError:
    """The library's message with the private folder's paths replaced by the names the user gave."""
    text = str(exc)
    for saved, upload in uploads.items():
        text = text.replace(saved, upload.name)
    text = text.replace(str(folder) + "/", "").replace(str(folder), "")
    return type(exc)(text)


def run_job(job: Job, model: StudioModel, req: Request, folder: Path, files: Files) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    uploads: dict[str, Upload] = {}
    try:
        job.step(0, req.n + 1, "loading the model")
        run = model.run()
        if req.kind == "hand":
            return _write_hand(job, run, req, folder, files, uploads)
        return _samples(job, run, req, folder, files, uploads)
    except SeqStudioError as exc:
        raise _said(exc, folder, uploads) from None


def _samples(job: Job, run, req: Request, folder: Path, files: Files, uploads: dict) -> dict[str, Any]:
    from .. import api

    prime = None
    if req.prime is not None:
        prime = _save(req.prime, folder / "in", "upload")
        uploads[str(prime)] = req.prime
    length = req.length or _default_length(run)
    samples = api.Samples()
    labels = []
    for i in range(req.n):  # one at a time: progress, and a cancel takes effect between samples
        job.step(i, req.n + 1, f"generating sample {i + 1} of {req.n}")
        one = api.generate(run, n=1, length=length, temperature=req.temperature,
                           seed=None if req.seed is None else req.seed + i, prime=prime, bias=req.bias,
                           conditions=req.conditions or None, top_k=req.top_k, top_p=req.top_p)
        samples.extend(one)
        labels += one.conditions or [{}]
    samples.conditions = labels if any(labels) else None
    job.step(req.n, req.n + 1, "drawing pictures and audio")
    out = folder / "out"
    paths = api.write_samples(run, samples, out, prefix="primed" if prime else "sample", render=False)
    assets = folder / "assets"
    assets.mkdir(exist_ok=True)
    items = []
    for path, asked in zip(paths, labels):
        item = run.domain.gallery_item(path, assets)  # the picture, the audio, the text: as the report shows it
        items.append(_item(item.title, files, path, item.image, item.audio, item.text, item.notes, asked))
    return {"kind": "samples", "items": items,
            "primed": req.prime.name if req.prime else None}


def _default_length(run) -> int:
    """The run's own default length (its training window), within the studio's limit."""
    from .. import api
    from ..errors import ConfigError

    try:
        return min(api.generation_length(run, None), MAX_LENGTH)
    except ConfigError:  # a window longer than generate's default: the studio's limit instead
        return MAX_LENGTH


def _write_hand(job: Job, run, req: Request, folder: Path, files: Files, uploads: dict) -> dict[str, Any]:
    from .. import api

    style = None
    if req.style is not None:
        path = _save(req.style, folder / "in", "style")
        uploads[str(path)] = req.style
        style = run.domain.fit_style(run.domain.read(path), run.codec)  # a canvas in pixels -> the run's units
    job.step(1, 3, "writing the line")
    lines = api.generate(run, texts=[req.text], style=style, style_text=req.style_text or None,
                         temperature=req.temperature, bias=req.bias, seed=req.seed, length=req.length,
                         top_k=req.top_k, top_p=req.top_p)
    job.step(2, 3, "drawing it")
    written = api.write_samples(run, lines, folder / "out")
    svg = next((p for p in written if p.suffix == ".svg" and p.name.startswith("line-")), None)
    png = next((p for p in written if p.suffix == ".png" and p.name.startswith("line-")), None)
    item = _item(req.text, files, svg, svg or png, None, None, [], {})
    if png is not None:
        item["downloads"].append({"label": "PNG", "file": files.add(png), "name": png.name})
    return {"kind": "hand", "items": [item], "styled": req.style is not None}


def _item(title: str, files: Files, main: Path | None, image: Path | None, audio: Path | None, text: str | None,
          notes: list[str], asked: dict) -> dict[str, Any]:
    image_number, audio_number = files.add(image), files.add(audio)
    downloads = []
    for path, number in ((main, files.add(main) if main != image else image_number), (audio, audio_number)):
        if number is not None:
            downloads.append({"label": KINDS.get(path.suffix.lower(), path.suffix.lstrip(".")), "file": number,
                              "name": path.name})
    return {"title": title, "image": image_number, "audio": audio_number, "text": text,
            "notes": [str(n) for n in notes], "conditions": dict(asked or {}), "downloads": downloads}
