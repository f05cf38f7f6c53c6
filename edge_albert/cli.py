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


@main.command()
@click.argument("bundle", type=click.Path(file_okay=False, path_type=str))
@click.argument("texts", nargs=-1)
@click.option("--jsonl", is_flag=True,
              help="Read JSON objects from stdin, one a line: text (+ text_pair), or question + context.")
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Keep only the k best labels' scores.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Interpreter threads (default: up to 4).")
@click.option("--backend", default=None, help="Force ai_edge_litert, tflite_runtime or tensorflow.")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@reports_errors
def predict(bundle: str, texts: tuple, jsonl: bool, top_k, threads, backend, batch_size: int) -> None:
    """Predict with BUNDLE: TEXT arguments, else one text per stdin line; JSON lines out."""
    import json

    from .predict import predict_records, records_from_lines
    from .tasks import load_model

    model = load_model(bundle, num_threads=threads, backend=backend, batch_size=batch_size)
    lines = list(texts) if texts else sys.stdin  # read lazily: results stream out as lines arrive
    for result in predict_records(model, records_from_lines(lines, jsonl), batch_size=batch_size, top_k=top_k):
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
