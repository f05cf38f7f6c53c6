"""The one PyTorch reference runner: named numpy outputs per task, the early-exit rule applied."""

import numpy as np
import pytest
from tests.checkpoints import make_albert_checkpoint

from edge_albert.contract import INPUT_NAMES, task_contract
from edge_albert.hf.checkpoint import load_checkpoint
from edge_albert.hf.reference import load_reference_runner
from edge_albert.converters.verify import encode_samples
from edge_albert.early_exit import CALLS_OUTPUT, parse_rule


def _batch(checkpoint):
    return encode_samples(checkpoint, ["a short text", "a somewhat longer text than that"], [None, None], 16)[0]


@pytest.mark.parametrize("task", ["text-classification", "question-answering", "feature-extraction"])
def test_runner_returns_the_contract_outputs_as_the_transformers_model_computes_them(task, tmp_path):
    import torch

    checkpoint = load_checkpoint(make_albert_checkpoint(tmp_path / task, task=task))
    runner = load_reference_runner(checkpoint)
    batch = _batch(checkpoint)
    outputs = runner.run(batch)
    assert tuple(outputs) == task_contract(task).output_names
    with torch.no_grad():
        direct = runner.model(**{name: torch.from_numpy(batch[name].astype(np.int64)) for name in INPUT_NAMES})
    for name, value in outputs.items():
        assert value.dtype == np.float32 and value.shape[0] == 2
        np.testing.assert_array_equal(value, getattr(direct, name).numpy())


def test_runner_with_an_exit_rule_returns_exit_logits_and_calls(tiny_classifier_checkpoint):
    checkpoint = load_checkpoint(tiny_classifier_checkpoint)
    never = load_reference_runner(checkpoint, early_exit=parse_rule("patience=1000"))
    outputs = never.run(_batch(checkpoint))
    assert set(outputs) == {"logits", CALLS_OUTPUT}
    assert list(outputs[CALLS_OUTPUT]) == [checkpoint.config.num_hidden_layers] * 2
    plain = load_reference_runner(checkpoint, model=never.model).run(_batch(checkpoint))
    np.testing.assert_allclose(outputs["logits"], plain["logits"], atol=1e-5)
