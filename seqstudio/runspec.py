"""The run specification: every choice that defines a run, resolved and typed once.

A run is defined by its domain, its codec and the codec's options, its backend and the backend's options, the
``train:`` options and where the data came from. ``api.resolve_config`` merges the layers (defaults < saved run
< ``--config`` file < ``--set`` < explicit options) into one ``RunSpec``; training, loading, evaluation and
resume then use that value, and the objects a run needs (domain, codec, backend) are made from it by the small
methods below, never by re-parsing a dict. Its ``to_dict`` is what a run directory's ``config.yaml`` holds,
in the layout of every earlier version (``domain``, ``codec: {name, ...}``, ``backend: {name, ...}``,
``train``, ``data``; ``heads`` since the NADE head, absent = the defaults), so existing run directories load with
``from_dict``.
"""

from __future__ import annotations

import copy
import dataclasses
import types
from pathlib import Path
from typing import Any, Mapping

from . import config as config_mod
from . import registry
from .config import TrainConfig
from .data import codec_class
from .errors import RunDirError
from .heads import HeadsConfig, head_options


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run's resolved configuration (immutable; build a changed copy with ``dataclasses.replace``)."""

    domain: str
    codec_name: str
    codec_config: Any  # an instance of the codec class's ``Config`` dataclass
    backend_name: str
    backend_config: Any  # an instance of the backend class's ``Config`` dataclass
    train: TrainConfig
    data: Mapping[str, Any]  # provenance, free-form; "path" is the data folder
    heads: HeadsConfig = HeadsConfig()  # the output heads' choices (``heads:``; older runs: the defaults)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", types.MappingProxyType(dict(self.data)))

    @classmethod
    def build(cls, domain: str, codec_name: str, codec_values: Mapping[str, Any], backend_name: str,
              backend_values: Mapping[str, Any], train_values: Mapping[str, Any],
              data: Mapping[str, Any], heads_values: Mapping[str, Any] | None = None) -> "RunSpec":
        """Type and validate each section; ConfigError / PluginError name the offending key or plugin."""
        codec_cls = codec_class(registry.load_domain(domain), codec_name)
        codec_config = config_mod.build(codec_cls.Config, dict(codec_values), "codec")
        backend_cls = registry.load_backend(backend_name)
        backend_config = config_mod.build(backend_cls.Config, dict(backend_values), "backend")
        train = config_mod.build(TrainConfig, dict(train_values), "train")
        heads = config_mod.build(HeadsConfig, dict(heads_values or {}), "heads")
        return cls(domain, codec_name, codec_config, backend_name, backend_config, train, data, heads)

    # -- the file form (config.yaml) -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain values in ``config.yaml``'s layout (also the JSON form)."""
        return {"domain": self.domain,
                "codec": {"name": self.codec_name, **dataclasses.asdict(self.codec_config)},
                "backend": {"name": self.backend_name, **dataclasses.asdict(self.backend_config)},
                "train": dataclasses.asdict(self.train),
                "heads": dataclasses.asdict(self.heads),
                "data": dict(self.data)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "config.yaml") -> "RunSpec":
        """Inverse of ``to_dict``; options missing from an older file take today's defaults."""
        try:
            codec = dict(values["codec"])
            backend = dict(values["backend"])
            return cls.build(values["domain"], codec.pop("name"), codec, backend.pop("name"), backend,
                             values.get("train") or {}, values.get("data") or {}, values.get("heads") or {})
        except (KeyError, TypeError, AttributeError) as exc:
            missing = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
            raise RunDirError(f"{where} is not a run configuration ({missing})") from None

    # -- what the run is made of ------------------------------------------------------------------------------------
    @property
    def data_path(self) -> Path:
        return Path(self.data["path"])

    def with_data_path(self, path: str | Path) -> "RunSpec":
        """The same run reading another folder (evaluation on other data)."""
        return dataclasses.replace(self, data={**self.data, "path": str(Path(path).resolve())})

    def make_domain(self):
        return registry.load_domain(self.domain)()

    def make_codec(self):
        """A fresh, unfitted codec; it gets its own copy of the options, so nothing it does changes the spec."""
        cls = codec_class(registry.load_domain(self.domain), self.codec_name)
        return cls(copy.deepcopy(self.codec_config))

    @property
    def backend_class(self):
        return registry.load_backend(self.backend_name)

    def make_backend(self, feature_spec, conditions=None, text=None):
        """The backend built for ``feature_spec`` (the codec's), with its own copy of the options; its output heads
        follow ``heads`` (``heads.head_options``), whatever the family. ``conditions`` (a ``ConditionSpec``) for a
        conditional run, refused by a backend that does not declare ``accepts_conditions``; ``text`` (a
        ``TextSpec``) for a text-conditioned run, refused by one that does not declare ``accepts_text``."""
        cls = self.backend_class
        extra = {}
        if text is not None:  # text: a sequence condition (seqstudio.text_condition), for families that declare it
            if not cls.accepts_text:
                from .errors import ConfigError

                raise ConfigError(f"backend {self.backend_name!r} cannot take a sequence condition (it does not "
                                  f"declare accepts_text) but the run is conditioned on {text.describe()}; use "
                                  f"--backend rnn or vrnn, or --set train.text=none")
            extra["text"] = text
        with head_options(self.heads):
            if conditions is None or not conditions.conditions_backend:
                return cls(feature_spec, copy.deepcopy(self.backend_config), **extra)
            if not cls.accepts_conditions:
                from .errors import ConfigError

                raise ConfigError(f"backend {self.backend_name!r} cannot be conditioned (it does not declare "
                                  f"accepts_conditions) but the data carries {conditions.describe()}; train it "
                                  f"unconditionally with --set train.conditions=none")
            return cls(feature_spec, copy.deepcopy(self.backend_config), conditions=conditions, **extra)


def model_changes(saved: RunSpec, asked: RunSpec) -> list[str]:
    """The model's options (``backend:``, ``heads:``) that ``asked`` changes from the run's ``saved`` spec, as
    ``section.key: saved -> asked``: ``--resume`` refuses them before any data is read (the saved weights belong to
    the saved model), instead of failing on the checkpoint after minutes of loading."""
    before, after = saved.to_dict(), asked.to_dict()
    changes = []
    for section in ("backend", "heads"):
        for key in sorted(set(before[section]) | set(after[section])):
            old, new = before[section].get(key), after[section].get(key)
            if old != new:
                changes.append(f"{section}.{key}: {old} -> {new}")
    return changes
