"""``render`` and ``convert``: any file an installed domain reads, drawn, played or converted (no run needed)."""

from __future__ import annotations

import logging
from pathlib import Path

from .. import registry, safe_io
from ..errors import ConfigError, DataError

log = logging.getLogger("seqstudio")


def render_file(path: str | Path, out: str | Path | None = None, domain: str | None = None,
                limit: int = 16, soundfont: str | Path | None = None) -> list[Path]:
    """Draw any file an installed domain reads as a picture; a many-sample file becomes a sheet of its first
    ``limit`` samples; an ``out`` ending in ``.wav`` renders the file as audio instead (``soundfont`` overrides
    the domain's instruments). Returns the files written (default: ``NAME.png`` in the current folder)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is not a file")
    name = domain or registry.domain_for_path(path)
    if name is None:
        raise DataError(f"no installed domain reads {path.name} (installed: {', '.join(registry.names('domain'))})")
    domain_obj = registry.load_domain(name)()
    out = Path(out) if out else Path(path.stem + ".png")
    if out.suffix.lower() not in (".png", ".wav"):
        raise ConfigError(f"--out must name a .png (picture) or .wav (audio) file, got {out}")
    if out.resolve() == path.resolve():
        raise ConfigError(f"--out {out} is the input file itself; choose another name")
    if out.suffix.lower() == ".wav":
        return [_render_file_audio(domain_obj, path, out, soundfont)]
    if soundfont:
        raise ConfigError("--soundfont is for audio: give an --out ending in .wav")
    collection = domain_obj.is_collection(path)
    if not (domain_obj.can_write_sheet if collection else domain_obj.can_render):
        raise ConfigError(f"domain {domain_obj.name!r} has no sample sheet" if collection else
                          f"domain {domain_obj.name!r} cannot draw samples")
    from ..outputs import staged_output

    # Drawn into a private folder and renamed into place (``seqstudio.outputs``): never through a link planted
    # at ``out``, nothing half-written on a full disk.
    if collection:
        samples = [x for split in domain_obj.read_collection(path).values() for x in split][:limit]
        if not samples:
            raise DataError(f"{path.name} holds no samples")
        with staged_output(out.parent) as stage:
            written = []
            for staged in domain_obj.write_sheet(samples, stage / out.stem):
                final = out.parent / Path(staged).name
                if final.exists() and final.resolve() == path.resolve():  # a sheet never replaces its input
                    log.warning("not writing %s: it is the file being drawn", final)
                    Path(staged).unlink()
                else:
                    written.append(final)
        return written
    sample = domain_obj.read(path)
    with staged_output(out.parent) as stage:
        domain_obj.render(sample, stage / out.name)
    return [out]


def _render_file_audio(domain_obj, path: Path, out: Path, soundfont) -> Path:
    if not domain_obj.can_render_audio:
        raise ConfigError(f"domain {domain_obj.name!r} cannot render audio")
    if domain_obj.is_collection(path):
        raise ConfigError(f"{path.name} holds many samples; audio is rendered for one-sample files")
    sample = domain_obj.read(path)
    if not domain_obj.has_audio(sample):
        raise ConfigError(f"{path.name} has no audio in domain {domain_obj.name!r}")
    from ..outputs import staged_output

    with staged_output(out.parent) as stage:  # never through a link at ``out``; nothing half-written
        domain_obj.render_audio(sample, stage / out.name, Path(soundfont) if soundfont else None)
    return out


def convert_file(src: str | Path, dest: str | Path, domain: str | None = None) -> Path:
    """Convert file ``src`` into ``dest`` (type given by its extension), e.g. an ABC tune to MIDI.

    Without ``domain``, every installed domain that reads ``src`` is asked in turn (the best guess first), so
    ``.abc`` reaches the text domain's ABC -> MIDI bridge although the MIDI domain reads ``.abc`` too.
    """
    from ..domain import ConversionUnsupported

    src, dest = Path(src), Path(dest)
    safe_io.check_regular_file(src)  # a FIFO or device would block or never end
    if domain:
        names = [domain]
    else:
        names = registry.domains_for_path(src)  # broken plugins left out: `seqstudio plugins` reports them
        if not names:
            raise DataError(f"no installed domain reads {src.name} "
                            f"(installed: {', '.join(registry.names('domain')) or 'none'})")
    refusals = []
    for name in names:
        try:
            registry.load_domain(name)().convert(src, dest)
            return dest
        except ConversionUnsupported as exc:
            refusals.append(str(exc))
    raise ConversionUnsupported(refusals[0] if len(refusals) == 1 else
                                f"no installed domain converts {src.suffix or src.name} files to "
                                f"{dest.suffix or 'extension-less'} files (tried: {', '.join(names)})")
