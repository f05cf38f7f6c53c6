"""edge-albert: fine-tuned ALBERT from Hugging Face to TensorFlow Lite on edge devices.

Importing this package pulls in nothing heavy (no TensorFlow, PyTorch or transformers):
it is what runs on the device.
"""

from importlib import import_module

from .version import __version__

from .bundle import Bundle, load_bundle  # noqa: E402
from .errors import (  # noqa: E402
    BundleError,
    CheckpointError,
    ConversionError,
    DataError,
    EdgeAlbertError,
    RuntimeBackendError,
    ServeError,
    VerificationError,
)

# The task API loads lazily (PEP 562) so that `import edge_albert` stays cheap for the CLI.
_LAZY = {
    "TextClassifier": "tasks", "QuestionAnswerer": "tasks", "TokenClassifier": "tasks",
    "FeatureExtractor": "tasks", "Prediction": "tasks", "Answer": "tasks", "WordLabel": "tasks",
    "TokenClassification": "tasks", "Features": "tasks", "load_model": "tasks",
    "AlbertTokenizer": "tokenizer", "ModelSession": "runtime",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "__version__",
    "TextClassifier",
    "QuestionAnswerer",
    "TokenClassifier",
    "FeatureExtractor",
    "Prediction",
    "Answer",
    "WordLabel",
    "TokenClassification",
    "Features",
    "load_model",
    "AlbertTokenizer",
    "ModelSession",
    "Bundle",
    "load_bundle",
    "BundleError",
    "CheckpointError",
    "ConversionError",
    "DataError",
    "EdgeAlbertError",
    "RuntimeBackendError",
    "ServeError",
    "VerificationError",
]
