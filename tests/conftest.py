import os
from pathlib import Path

import pytest

# Tests never use the network: huggingface_hub reads this once, at import, so set it before anything imports it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.checkpoints import make_albert_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def tiny_classifier_checkpoint(tmp_path_factory) -> Path:
    """A tiny random ALBERT sequence classifier (2 labels) with the albert-base-v2 tokenizer."""
    return make_albert_checkpoint(tmp_path_factory.mktemp("tiny-cls") / "ckpt", task="text-classification")
