"""Workstation side: read checkpoints, build the TF graph, convert, verify.

TensorFlow and PyTorch are imported lazily inside the functions that need them, so that
`import edge_albert` stays light on a device.
"""

import os as _os

# TensorFlow's C++ INFO/WARNING lines bury the conversion report; errors still show.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
