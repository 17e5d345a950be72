"""What a data folder says about itself: ``seqstudio.yaml``, written by ``seqstudio data build`` (its domain,
its recipe's codec options, the attributes its file names carry)."""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_write
from ..errors import DataError

FOLDER_INFO = "seqstudio.yaml"


def folder_info(root: Path) -> dict:
    """What a data folder says about itself (``seqstudio.yaml``, written by ``seqstudio data build``).

    Extensions alone can be ambiguous (``.abc`` is music for the MIDI domain and text for the text domain), so a
    built dataset records its domain; an explicit ``--domain`` still wins.
    """
    import yaml

    path = Path(root) / FOLDER_INFO
    if not path.is_file():
        return {}
    from ..safe_yaml import load

    try:
        if path.stat().st_size > (1 << 20):
            raise DataError(f"{path}: more than 1 MB, not a folder description seqstudio writes")
        info = load(path.read_text(), str(path), DataError)
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({str(exc).splitlines()[0][:200]})") from None
    return info if isinstance(info, dict) else {}


def folder_codec(root: Path, domain_name: str, codec_name: str) -> dict:
    """The codec options a built folder records (its recipe's ``codec:`` section), when training uses the domain
    and codec they were written for; training starts from them, below ``--config`` and ``--set``."""
    info = folder_info(root)
    codec = info.get("codec")
    if info.get("domain") != domain_name or not isinstance(codec, dict) or codec.get("name") != codec_name:
        return {}
    return {key: value for key, value in codec.items() if key != "name"}


def write_folder_info(root: Path, **info) -> None:
    import yaml

    atomic_write(Path(root) / FOLDER_INFO, lambda tmp: Path(tmp).write_text(yaml.safe_dump(info, sort_keys=False)))
