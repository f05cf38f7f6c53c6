"""edge-albert: fine-tuned ALBERT from Hugging Face to TensorFlow Lite on edge devices.

Importing this package pulls in nothing heavy (no TensorFlow, PyTorch or transformers):
it is what runs on the device.
"""

__version__ = "0.1.0"

from .bundle import Bundle, load_bundle  # noqa: E402
from .errors import (  # noqa: E402
    BundleError,
    CheckpointError,
    ConversionError,
    DataError,
    EdgeAlbertError,
    RuntimeBackendError,
    VerificationError,
)

__all__ = [
    "__version__",
    "Bundle",
    "load_bundle",
    "BundleError",
    "CheckpointError",
    "ConversionError",
    "DataError",
    "EdgeAlbertError",
    "RuntimeBackendError",
    "VerificationError",
]
