"""edge-albert distill / teacher-outputs: a tiny random BERT teacher (its own WordPiece tokenizer) distilled into
tiny ALBERT students (their own SentencePiece tokenizers); the outputs file, its cache, bad inputs, early exit."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from edge_albert.bundle import sha256_of_file
from edge_albert.cli import main
from edge_albert.compress import DistillConfig
from edge_albert.compress.augment import AugmentConfig
from edge_albert.compress.foreign import RECORD_FILE, distil, write_teacher_outputs
from edge_albert.compress.teacher_outputs import load_outputs
from edge_albert.compress.foreign_options import DistilOptions, TransferOptions
from edge_albert.errors import CompressionError
from edge_albert.finetune_config import FinetuneConfig
from tests.checkpoints import make_albert_checkpoint, make_bert_teacher
from tests.project_data import SST2_TRAIN

SMALL_STUDENT = dict(vocab_size=1000, embedding_size=16, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=37, max_position_embeddings=64)


@pytest.fixture(scope="module")
def sst2(tmp_path_factory):
    lines = SST2_TRAIN.read_text().splitlines()
    folder = tmp_path_factory.mktemp("sst2")
    (folder / "train.tsv").write_text("\n".join(lines[:61]) + "\n")
    (folder / "dev.tsv").write_text("\n".join([lines[0]] + lines[200:221]) + "\n")
    return folder / "train.tsv", folder / "dev.tsv"


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, sst2):
    texts = [line.split("\t")[0] for line in sst2[0].read_text().splitlines()[1:]]
    return make_bert_teacher(tmp_path_factory.mktemp("bert") / "teacher", texts)


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    return make_albert_checkpoint(tmp_path_factory.mktemp("albert") / "student", shape=SMALL_STUDENT | {"vocab_size": 30000})


def _options(augment=0, multi_depth=False, **distill):
    config = DistillConfig(**{"epochs": 1, "batch_size": 16, "learning_rate": 1e-3, "max_length": 32, "save_steps": 2,
                              **distill})
    scratch = FinetuneConfig(**SMALL_STUDENT)
    return DistilOptions(transfer=TransferOptions(augment=AugmentConfig(copies=augment), chunk_rows=32),
                         distill=config, multi_depth=multi_depth, scratch=scratch)


def _weights(directory):
    from safetensors.numpy import load_file

    return load_file(str(directory / "model.safetensors"))


def test_distil_from_a_bert_teacher_caches_its_outputs(teacher, student, sst2, tmp_path, monkeypatch):
    train, dev = sst2
    first = distil(train, tmp_path / "a", teacher_dir=teacher, student_dir=student, dev_path=dev,
                   options=_options(augment=1), log=lambda line: None)
    assert not first.teacher_outputs_cached
    assert first.teacher_outputs.parent == tmp_path / ".teacher-outputs"
    record = json.loads((tmp_path / "a" / RECORD_FILE).read_text())
    assert record["teacher"]["architecture"] == "BertForSequenceClassification"
    assert record["data"]["labelled_rows"] == 60 and record["data"]["transfer_rows"] == 120
    assert 0 <= record["student"]["dev_accuracy"] <= 1 and record["teacher"]["dev_accuracy"] is not None
    assert (tmp_path / "a" / "spiece.model").is_file() and not (tmp_path / "a.partial").exists()

    calls = []
    import edge_albert.compress.foreign as foreign

    real = foreign.compute_outputs
    monkeypatch.setattr(foreign, "compute_outputs", lambda *a, **k: calls.append(1) or real(*a, **k))
    second = distil(train, tmp_path / "b", teacher_dir=teacher, student_dir=student, dev_path=dev,
                    options=_options(augment=1), log=lambda line: None)
    assert second.teacher_outputs_cached and calls == []  # neither the transfer set nor dev ran the teacher again
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(np.array_equal(a[name], b[name]) for name in a)


def test_a_teacher_outputs_file_replaces_the_teacher(teacher, student, sst2, tmp_path):
    train, dev = sst2
    outputs = write_teacher_outputs(teacher, train, tmp_path / "t.safetensors",
                                    TransferOptions(augment=AugmentConfig(copies=1), chunk_rows=32), log=lambda line: None)
    assert outputs.logits.dtype == np.float16 and outputs.logits.shape == (120, 2)
    assert outputs.record["labels"] == ["negative", "positive"] and not (tmp_path / "t.safetensors.partial").exists()
    with_teacher = distil(train, tmp_path / "a", teacher_dir=teacher, student_dir=student, options=_options(augment=1),
                          cache_dir=tmp_path / "cache", log=lambda line: None)
    without = distil(train, tmp_path / "b", teacher_outputs=tmp_path / "t.safetensors", student_dir=student,
                     options=_options(augment=1), log=lambda line: None)
    cached = load_outputs(with_teacher.teacher_outputs)  # the cache is the same format, with the same logits
    assert np.array_equal(cached.logits, outputs.logits) and cached.record["texts"] == outputs.record["texts"]
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(np.array_equal(a[name], b[name]) for name in a)
    record = json.loads((tmp_path / "b" / RECORD_FILE).read_text())
    assert record["teacher_outputs"]["sha256"] == sha256_of_file(tmp_path / "t.safetensors")
    assert record["teacher"]["weights_sha256"] == sha256_of_file(teacher / "model.safetensors")
    assert without.teacher_outputs_cached
