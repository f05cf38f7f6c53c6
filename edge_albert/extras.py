"""How to install an extra, spelled as the README installs edge-albert: from the wheel.

edge-albert is not on a package index, so `pip install 'edge-albert[litert]'` would fail; a hint
names the wheel `make wheel` builds (and a source checkout's editable install).
"""

from __future__ import annotations

from .version import __version__

WHEEL = f"edge_albert-{__version__}-py3-none-any.whl"


def install_hint(extras: str) -> str:
    """`pip install 'WHEEL[extras]'` plus where the wheel comes from, for an error message."""
    return f"pip install '{WHEEL}[{extras}]' (the wheel from `make wheel`; in a source checkout: pip install -e '.[{extras}]')"
