"""seqstudio: folders of MIDI, pen strokes and text in, trained sequence generators and new files out.

The public names are loaded on first use (PEP 562): ``import seqstudio`` (and so every CLI command) must not pay
for torch's import, which is most of a command's start-up; only the functions that train or sample need it.
"""

from .errors import ConfigError, DataError, PluginError, RunDirError, SeqStudioError
from .lazy import lazy_names

__version__ = "0.1.0"

__all__ = ["train", "load", "generate", "interpolate", "harmonize", "infill", "evaluate", "write_samples",
           "encode_file", "decode_tensor",
           "SeqStudioError", "ConfigError", "DataError", "PluginError", "RunDirError",
           "FeatureSpec", "Binary", "Categorical", "Real"]

_LAZY = {"train": "api", "load": "api", "generate": "api", "interpolate": "api", "evaluate": "api",
         "harmonize": "filling", "infill": "filling",
         "write_samples": "api", "encode_file": "api", "decode_tensor": "api",
         "FeatureSpec": "spec", "Binary": "spec", "Categorical": "spec", "Real": "spec"}

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
