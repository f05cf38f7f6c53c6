"""Workstation side: read checkpoints, build the TF graph, convert, verify.

TensorFlow and PyTorch are imported lazily inside the functions that need them, so that
`import edge_albert` stays light on a device.
"""
