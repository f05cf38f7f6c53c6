from pathlib import Path

import pytest

from tests.checkpoints import make_albert_checkpoint


@pytest.fixture(scope="session")
def tiny_classifier_checkpoint(tmp_path_factory) -> Path:
    """A tiny random ALBERT sequence classifier (2 labels) with the albert-base-v2 tokenizer."""
    return make_albert_checkpoint(tmp_path_factory.mktemp("tiny-cls") / "ckpt", task="text-classification")
