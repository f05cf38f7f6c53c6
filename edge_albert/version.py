"""The package version, in a module of its own so that any module can read it without importing the package's
public API (edge_albert/__init__.py imports bundle, which imports signing and extras: a cycle otherwise)."""

__version__ = "0.1.0"
