"""seqstudio: folders of MIDI, pen strokes and text in, trained sequence generators and new files out.

The public names are loaded on first use (PEP 562): ``import seqstudio`` (and so every CLI command) must not pay
for torch's import, which is most of a command's start-up; only the functions that train or sample need it.
"""

from .errors import ConfigError, DataError, PluginError, RunDirError, SeqStudioError

__version__ = "0.1.0"

__all__ = ["train", "load", "generate", "interpolate", "harmonize", "infill", "evaluate", "write_samples", "encode_file", "decode_tensor",
           "SeqStudioError", "ConfigError", "DataError", "PluginError", "RunDirError",
           "FeatureSpec", "Binary", "Categorical", "Real"]

_LAZY = {"train": "api", "load": "api", "generate": "api", "interpolate": "api", "evaluate": "api",
         "harmonize": "filling", "infill": "filling",
         "write_samples": "api", "encode_file": "api", "decode_tensor": "api",
         "FeatureSpec": "spec", "Binary": "spec", "Categorical": "spec", "Real": "spec"}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'seqstudio' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
