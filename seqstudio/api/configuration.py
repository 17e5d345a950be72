"""``resolve_config``: the run's specification from defaults, the data folder, a config file, ``--set`` and
options, typed and validated once (``RunSpec``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .. import config as config_mod
from .. import data, registry
from ..errors import ConfigError, DataError
from ..runspec import RunSpec

log = logging.getLogger("seqstudio")


def resolve_config(data_dir: Path | None, backend: str | None = None, domain: str | None = None,
                   codec: str | None = None, config_file: Path | None = None, overrides: list[str] = (),
                   train_options: dict[str, Any] | None = None, base: RunSpec | None = None) -> RunSpec:
    """Defaults < data folder's recorded codec < run's saved spec (resume) < config file < --set < explicit
    options, typed and validated once."""
    file_cfg = config_mod.load_yaml(config_file) if config_file else {}
    lines = file_cfg.pop("_lines", {})
    cfg = config_mod.merge(base.to_dict() if base else {}, file_cfg, config_mod.parse_overrides(list(overrides)))
    if data_dir is not None:
        cfg["data"] = {**cfg.get("data", {}), "path": str(Path(data_dir).resolve())}
    if "path" not in cfg.get("data", {}):
        raise ConfigError("no data folder given")
    domain_name = (domain or cfg.get("domain") or data.folder_info(Path(cfg["data"]["path"])).get("domain")
                   or registry.domain_for_path(Path(cfg["data"]["path"])))
    if domain_name is None:
        folder = Path(cfg["data"]["path"])
        if folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
            raise DataError(f"the folder {folder} is empty: put the files to train on in it (or build a dataset "
                            f"into it: `seqstudio data list`)")
        raise DataError(f"no installed domain reads the files in {cfg['data']['path']} "
                        f"(installed: {', '.join(registry.names('domain')) or 'none'})")
    cfg["domain"] = domain_name
    domain_obj = registry.load_domain(domain_name)()
    codec_values = dict(cfg.get("codec", {}))
    # A folder built by a recipe with a codec section (jsb-bl2012: piano-roll frames) names its codec: that one,
    # unless the command names another, before the domain's default.
    recorded = data.folder_info(Path(cfg["data"]["path"])).get("codec")
    recorded_name = recorded.get("name") if isinstance(recorded, dict) else None
    recorded_name = recorded_name if recorded_name in domain_obj.codecs else None  # another domain's (--domain)
    codec_name = codec or codec_values.pop("name", None) or recorded_name or domain_obj.default_codec
    codec_values.pop("name", None)
    codec_values = {**data.folder_codec(Path(cfg["data"]["path"]), domain_name, codec_name), **codec_values}
    backend_values = dict(cfg.get("backend", {}))
    backend_name = backend or backend_values.pop("name", None) or domain_obj.default_backend
    backend_values.pop("name", None)
    train_values = {**cfg.get("train", {}), **{k: v for k, v in (train_options or {}).items() if v is not None}}
    try:
        return RunSpec.build(domain_name, codec_name, codec_values, backend_name, backend_values, train_values,
                             cfg["data"], cfg.get("heads"))
    except ConfigError as exc:
        raise config_mod.with_line(exc, lines, config_file) if config_file else exc


def default_run_dir(spec: RunSpec) -> Path:
    stem = f"{spec.data_path.name}-{spec.backend_name}"
    candidate, i = Path("runs") / stem, 1
    while candidate.exists():
        i += 1
        candidate = Path("runs") / f"{stem}-{i}"
    return candidate
