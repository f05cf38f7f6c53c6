"""Reading Hugging Face checkpoints: every bad input gets one clear CheckpointError."""

import json
import shutil

import numpy as np
import pytest
from tests.checkpoints import edit_config, make_albert_checkpoint

from edge_albert.hf.checkpoint import load_checkpoint
from edge_albert.errors import CheckpointError


@pytest.fixture()
def checkpoint_copy(tiny_classifier_checkpoint, tmp_path):
    target = tmp_path / "ckpt"
    shutil.copytree(tiny_classifier_checkpoint, target)
    return target


def test_reads_weights_labels_and_tokenizer(tiny_classifier_checkpoint):
    checkpoint = load_checkpoint(tiny_classifier_checkpoint)
    assert checkpoint.task == "text-classification"
    assert checkpoint.labels == ["negative", "positive"]
    assert checkpoint.config.hidden_size == 32
    assert "encoder.albert_layer_groups.0.albert_layers.0.ffn.weight" in checkpoint.weights
    assert all(w.dtype == np.float32 for w in checkpoint.weights.values())
    assert checkpoint.tokenizer_json.name == "tokenizer.json"
    assert checkpoint.tokenizer_settings["special_tokens"]["cls_id"] == 2
    assert len(checkpoint.weights_sha256) == 64


def test_builds_tokenizer_json_when_only_spiece_model_exists(checkpoint_copy):
    (checkpoint_copy / "tokenizer.json").unlink()
    checkpoint = load_checkpoint(checkpoint_copy)
    from tokenizers import Tokenizer

    ids = Tokenizer.from_file(str(checkpoint.tokenizer_json)).encode("hello, my dog is cute").ids
    assert ids == [2, 10975, 15, 51, 1952, 25, 10901, 3]


def test_reads_pytorch_bin_with_weights_only(tmp_path):
    path = make_albert_checkpoint(tmp_path / "bin", safe_serialization=False)
    if (path / "model.safetensors").exists():  # transformers 5 may always write safetensors
        import torch
        from safetensors.torch import load_file

        torch.save(load_file(str(path / "model.safetensors")), path / "pytorch_model.bin")
        (path / "model.safetensors").unlink()
    checkpoint = load_checkpoint(path)
    assert checkpoint.weights_file.name == "pytorch_model.bin"
    assert checkpoint.parameter_count() > 0


def test_reads_float16_safetensors_as_float32(checkpoint_copy):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(checkpoint_copy / "model.safetensors"))
    save_file({k: v.astype(np.float16) for k, v in tensors.items()}, str(checkpoint_copy / "model.safetensors"))
    checkpoint = load_checkpoint(checkpoint_copy)
    assert checkpoint.weights["classifier.weight"].dtype == np.float32


def test_refuses_a_pickle_that_is_not_a_plain_state_dict(checkpoint_copy):
    import torch

    (checkpoint_copy / "model.safetensors").unlink()
    torch.save({"weights": object()}, checkpoint_copy / "pytorch_model.bin", _use_new_zipfile_serialization=True)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(checkpoint_copy)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: edit_config(p, model_type="bert"), "ALBERT checkpoints only"),
        (lambda p: edit_config(p, architectures=["AlbertForMaskedLM"]), "not supported"),
        (lambda p: edit_config(p, num_hidden_groups=2), "num_hidden_groups=2"),
        (lambda p: edit_config(p, inner_group_num=2), "inner_group_num=2"),
        (lambda p: edit_config(p, hidden_size=48), "has shape"),
        (lambda p: edit_config(p, hidden_act="mish"), "hidden_act"),
        (lambda p: (p / "model.safetensors").unlink(), "no model.safetensors or pytorch_model.bin"),
        (lambda p: (p / "config.json").unlink(), "no config.json"),
        (lambda p: (p / "config.json").write_text("{not json"), "not valid JSON"),
        (lambda p: ((p / "tokenizer.json").unlink(), (p / "spiece.model").unlink()), "neither tokenizer.json nor spiece.model"),
    ],
    ids=["not-albert", "unsupported-architecture", "hidden-groups", "inner-groups", "wrong-shape",
         "unknown-activation", "missing-weights", "missing-config", "broken-config", "missing-tokenizer"],
)
def test_bad_checkpoints_get_one_clear_error(checkpoint_copy, damage, message):
    damage(checkpoint_copy)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(checkpoint_copy)


def test_truncated_safetensors(checkpoint_copy):
    weights = checkpoint_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(checkpoint_copy)


def test_missing_weight_is_named(checkpoint_copy):
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(checkpoint_copy / "model.safetensors"))
    del tensors["albert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight"]
    save_file(tensors, str(checkpoint_copy / "model.safetensors"))
    with pytest.raises(CheckpointError, match="ffn.weight is missing"):
        load_checkpoint(checkpoint_copy)


def test_not_a_directory(tmp_path):
    with pytest.raises(CheckpointError, match="not a directory"):
        load_checkpoint(tmp_path / "nothing-here")


def test_cli_prints_one_line_without_traceback(checkpoint_copy, tmp_path):
    from click.testing import CliRunner

    from edge_albert.cli import main

    edit_config(checkpoint_copy, num_hidden_groups=3)
    result = CliRunner().invoke(main, ["convert", str(checkpoint_copy), "-o", str(tmp_path / "out.edgealbert")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "num_hidden_groups=3" in error_lines[0]
    assert not (tmp_path / "out.edgealbert").exists()
