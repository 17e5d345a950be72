"""seqstudio: folders of MIDI, pen strokes and text in, trained sequence generators and new files out."""

from .api import decode_tensor, encode_file, evaluate, generate, interpolate, load, train, write_samples
from .errors import ConfigError, DataError, PluginError, RunDirError, SeqStudioError
from .spec import Binary, Categorical, FeatureSpec, Real

__version__ = "0.1.0"

__all__ = ["train", "load", "generate", "interpolate", "evaluate", "write_samples", "encode_file", "decode_tensor",
           "SeqStudioError", "ConfigError", "DataError", "PluginError", "RunDirError",
           "FeatureSpec", "Binary", "Categorical", "Real"]
