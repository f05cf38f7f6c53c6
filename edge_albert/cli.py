"""The `edge-albert` command: thin click commands over library functions.

Every command catches EdgeAlbertError once and prints it as one line (no traceback).
Heavy libraries are imported inside the commands that need them.
"""

from __future__ import annotations

import functools
import sys

import click

from . import __version__
from .errors import EdgeAlbertError


def reports_errors(command):
    """Turn an EdgeAlbertError into `error: <message>` on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except EdgeAlbertError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="edge-albert")
def main() -> None:
    """Convert fine-tuned ALBERT checkpoints to TensorFlow Lite bundles and run them on edge devices."""


if __name__ == "__main__":
    main()
