import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from checkpoints import make_albert_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def tiny_classifier_checkpoint(tmp_path_factory) -> Path:
    """A tiny random ALBERT sequence classifier (2 labels) with the albert-base-v2 tokenizer."""
    return make_albert_checkpoint(tmp_path_factory.mktemp("tiny-cls") / "ckpt", task="text-classification")
