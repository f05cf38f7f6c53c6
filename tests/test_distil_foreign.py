"""edge-albert distill / teacher-outputs: a tiny random BERT teacher (its own WordPiece tokenizer) distilled into
tiny ALBERT students (their own SentencePiece tokenizers); the outputs file, its cache, bad inputs, early exit."""

import json
import os

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
    umask = os.umask(0o22)
    os.umask(umask)
    assert (tmp_path / "t.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask  # readable as the umask says
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


def test_a_student_from_scratch_trains_its_own_tokenizer_and_every_depth(teacher, sst2, tmp_path):
    train, dev = sst2
    result = distil(train, tmp_path / "s", teacher_dir=teacher, dev_path=dev, options=_options(multi_depth=True),
                    log=lambda line: None)
    record = json.loads((tmp_path / "s" / RECORD_FILE).read_text())
    assert record["student"]["init"] == "scratch" and record["options"]["scratch"]["num_hidden_layers"] == 3
    assert len(result.dev_accuracy_per_call) == 3 and result.dev_accuracy_per_call[-1] == result.dev_accuracy
    config = json.loads((tmp_path / "s" / "config.json").read_text())
    assert config["vocab_size"] <= 1000 and config["id2label"] == {"0": "negative", "1": "positive"}
    assert (tmp_path / "s" / "spiece.model").is_file()  # its own SentencePiece tokenizer, trained as finetune does


@pytest.mark.slow
def test_the_multi_depth_student_converts_with_early_exit(teacher, sst2, tmp_path):
    from edge_albert.converters.convert import convert_checkpoint

    train, dev = sst2
    distil(train, tmp_path / "s", teacher_dir=teacher, options=_options(multi_depth=True), log=lambda line: None)
    result = convert_checkpoint(tmp_path / "s", tmp_path / "s.edgealbert", quantize="fp32", early_exit="patience=1")
    assert [v.passed for v in result.variants] == [True]


def _error(tmp_path, teacher=None, outputs=None, student=None, train=None, options=None):
    with pytest.raises(CompressionError) as caught:
        distil(train, tmp_path / "out", teacher_dir=teacher, teacher_outputs=outputs, student_dir=student,
               options=options or _options(), cache_dir=tmp_path / "cache", log=lambda line: None)
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()  # refused before any work
    return str(caught.value)


def test_a_teacher_with_other_labels_is_one_error(sst2, tmp_path):
    teacher = make_bert_teacher(tmp_path / "t", ["a b"], labels=["LABEL_0", "LABEL_1"])
    assert _error(tmp_path, teacher=teacher, train=sst2[0]) == (
        f"teacher {teacher} has labels ['LABEL_0', 'LABEL_1'], the data ['negative', 'positive'] (labels): "
        "they must be the same names in the same order")
    reversed_labels = make_bert_teacher(tmp_path / "r", ["a b"], labels=["positive", "negative"])
    assert "has labels ['positive', 'negative']" in _error(tmp_path, teacher=reversed_labels, train=sst2[0])


def test_a_teacher_without_a_tokenizer_is_one_error(sst2, tmp_path):
    teacher = make_bert_teacher(tmp_path / "t", ["a b"], with_tokenizer=False)
    assert _error(tmp_path, teacher=teacher, train=sst2[0]).startswith(f"teacher {teacher} has no tokenizer (none of ")


def test_a_student_with_other_labels_is_one_error(teacher, sst2, tmp_path):
    student = make_albert_checkpoint(tmp_path / "s", shape=SMALL_STUDENT | {"vocab_size": 30000}, labels=["bad", "good"])
    assert "student " in _error(tmp_path, teacher=teacher, student=student, train=sst2[0])


@pytest.fixture(scope="module")
def outputs_file(teacher, sst2, tmp_path_factory):
    path = tmp_path_factory.mktemp("outputs") / "teacher.safetensors"
    write_teacher_outputs(teacher, sst2[0], path, TransferOptions(augment=AugmentConfig(copies=1)), log=lambda line: None)
    return path


def test_an_outputs_file_of_other_texts_is_one_error(outputs_file, student, sst2, tmp_path):
    message = _error(tmp_path, outputs=outputs_file, student=student, train=sst2[0], options=_options(augment=2))
    assert message.startswith(f"teacher-outputs file {outputs_file} was computed on other texts (120 rows ")
    assert "augment 1, augment_seed 0; this run: 180 rows" in message
    message = _error(tmp_path, outputs=outputs_file, student=student, train=sst2[1], options=_options(augment=1))
    assert "was computed on other texts" in message


def test_an_outputs_file_of_another_teacher_is_one_error(outputs_file, student, sst2, tmp_path):
    other = make_bert_teacher(tmp_path / "other", ["a b"], seed=1)
    message = _error(tmp_path, teacher=other, outputs=outputs_file, student=student, train=sst2[0],
                     options=_options(augment=1))
    assert message.startswith(f"teacher-outputs file {outputs_file} was computed by the teacher with weights sha256 ")


def test_an_outputs_file_with_other_labels_or_corrupt_is_one_error(outputs_file, student, sst2, tmp_path):
    from edge_albert.compress.teacher_outputs import load_outputs

    options = _options(augment=1)
    other = DistilOptions(transfer=TransferOptions(labels=("neg", "pos"), augment=AugmentConfig(copies=1)),
                          distill=options.distill)
    assert "has labels ['negative', 'positive'], the data ['neg', 'pos']" in _error(
        tmp_path, outputs=outputs_file, train=sst2[0], options=other)
    (tmp_path / "not.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    assert "is not an edge-albert teacher-outputs file" in _error(tmp_path, outputs=tmp_path / "not.safetensors",
                                                                  train=sst2[0])
    corrupt = tmp_path / "corrupt.safetensors"
    data = bytearray(outputs_file.read_bytes())
    data[-1] ^= 0x40  # the last logit's bytes
    corrupt.write_bytes(bytes(data))
    with pytest.raises(CompressionError, match="is corrupt: its logits do not match their recorded sha256"):
        load_outputs(corrupt)


def test_an_interrupted_teacher_computation_resumes_from_its_chunks(teacher, sst2, tmp_path, monkeypatch):
    import edge_albert.compress.teacher_outputs as module

    options = TransferOptions(augment=AugmentConfig(copies=1), chunk_rows=32)
    real, runs = module._run_chunk, []

    def crash_on_third(*args):
        runs.append(1)
        if len(runs) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(module, "_run_chunk", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        write_teacher_outputs(teacher, sst2[0], tmp_path / "t.safetensors", options, log=lambda line: None)
    assert not (tmp_path / "t.safetensors").exists()
    assert len(list((tmp_path / "t.safetensors.partial").glob("chunk-*.npy"))) == 2
    monkeypatch.setattr(module, "_run_chunk", real)
    lines = []
    resumed = write_teacher_outputs(teacher, sst2[0], tmp_path / "t.safetensors", options, log=lines.append)
    assert lines[1] == f"teacher outputs: resuming, 2 of 4 chunks already in {tmp_path / 't.safetensors.partial'}"
    assert "rows/s, ETA" in lines[-2]
    fresh = write_teacher_outputs(teacher, sst2[0], tmp_path / "u.safetensors", options, log=lambda line: None)
    assert np.array_equal(resumed.logits, fresh.logits)


def test_the_cli_writes_outputs_and_distils_from_them(teacher, student, sst2, tmp_path):
    train, dev = sst2
    runner = CliRunner()
    written = runner.invoke(main, ["teacher-outputs", str(teacher), str(train), "-o", str(tmp_path / "t.safetensors"),
                                   "--augment", "1"])
    assert written.exit_code == 0, written.output
    assert "120 rows x 2 labels" in written.output and "teacher accuracy on the 60 labelled rows: " in written.output
    args = ["distill", str(train), "--teacher-outputs", str(tmp_path / "t.safetensors"), "--student", str(student),
            "--dev", str(dev), "-o", str(tmp_path / "s"), "--batch-size", "16", "--max-length", "32"]
    refused = runner.invoke(main, args)
    assert refused.exit_code == 1 and refused.output.count("\n") == 1
    assert refused.output.startswith("error: teacher-outputs file") and "--augment 1, --augment-seed 0" in refused.output
    done = runner.invoke(main, args + ["--augment", "1", "--multi-depth"])
    assert done.exit_code == 0, done.output
    assert "dev accuracy after each layer call: " in done.output
    again = runner.invoke(main, args + ["--augment", "1"])
    assert again.exit_code == 1 and "already exists; pass --overwrite" in again.output
    nothing = runner.invoke(main, ["distill", str(train), "-o", str(tmp_path / "x")])
    assert nothing.output == ("error: distill needs --teacher (a sequence classifier directory) or --teacher-outputs "
                              "(a file teacher-outputs wrote)\n")


def test_an_interrupted_distillation_resumes_with_its_tokenizer(outputs_file, sst2, tmp_path):
    train, dev = sst2
    out = tmp_path / "s"
    options = _options(augment=1, epochs=2)

    def interrupt_after_first_epoch(message):
        if message.startswith("epoch 1.00"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distil(train, out, teacher_outputs=outputs_file, dev_path=dev, options=options, log=interrupt_after_first_epoch)
    staging = tmp_path / "s.partial"
    assert not out.exists() and (staging / "trainer").is_dir() and (staging / "tokenizer" / "spiece.model").is_file()
    spiece = (staging / "tokenizer" / "spiece.model").read_bytes()
    with pytest.raises(CompressionError, match="holds an interrupted run with different settings \\(options differ\\)"):
        distil(train, out, teacher_outputs=outputs_file, dev_path=dev, options=_options(augment=1, epochs=3),
               log=lambda line: None)
    lines = []
    result = distil(train, out, teacher_outputs=outputs_file, dev_path=dev, options=options, log=lines.append)
    assert result.resumed_from and int(result.resumed_from.rsplit("-", 1)[1]) >= 2
    assert "60 labelled rows; tokenizer from" in " ".join(lines) and (out / "spiece.model").read_bytes() == spiece
    assert not staging.exists()


def test_a_pruned_student_keeps_its_removed_heads_at_zero(teacher, student, sst2, tmp_path):
    """A compressed student (heads removed by `compress`, stored as zeros) distilled from another teacher stays
    compressed: the removed heads get no update, so the converter still drops them."""
    import shutil

    import torch

    from edge_albert.compress.prune import head_masks, pruned_heads_are_zero, zero_pruned_heads
    from edge_albert.hf.checkpoint import PRUNED_HEADS_KEY
    from edge_albert.hf.reference import load_reference_model
    from edge_albert.training import save_checkpoint

    pruned_dir = tmp_path / "pruned"
    shutil.copytree(student, pruned_dir)
    config = json.loads((pruned_dir / "config.json").read_text())
    config[PRUNED_HEADS_KEY] = [1, 3]
    (pruned_dir / "config.json").write_text(json.dumps(config))
    model = load_reference_model(pruned_dir)
    zero_pruned_heads(model)
    save_checkpoint(model, pruned_dir, "float32")
    assert pruned_heads_are_zero(load_reference_model(pruned_dir))

    train, dev = sst2
    distil(train, tmp_path / "out", teacher_dir=teacher, student_dir=pruned_dir, dev_path=dev,
           options=_options(learning_rate=1e-2), log=lambda line: None)
    trained = load_reference_model(tmp_path / "out")
    assert trained.config.to_dict()[PRUNED_HEADS_KEY] == [1, 3]
    assert pruned_heads_are_zero(trained)
    kept = [parameter * mask for parameter, mask in head_masks(trained).items()]
    original = [parameter * mask for parameter, mask in head_masks(model).items()]
    assert any(not torch.equal(a, b) for a, b in zip(kept, original)), "the kept heads were trained"


# -- the committed distilled examples --------------------------------------------------------------
def _committed_example_scores_its_record(name: str):
    """(record, model) of examples/NAME after checking what both committed students claim: its record names
    the committed teacher-outputs file (same sha256, so the student is reproducible without the teacher), and
    the weights as committed score the recorded SST-2 dev accuracy, at every depth."""
    from pathlib import Path

    import torch
    from transformers import AlbertForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    from edge_albert.data import read_examples
    from edge_albert.finetune import depth_accuracies
    from edge_albert.training import EncodedDataset, accuracy_of
    from tests.project_data import SST2_DEV, data_file

    example = Path(__file__).resolve().parents[1] / "examples" / name
    record = json.loads((example / RECORD_FILE).read_text())
    outputs = data_file("glue-sst2/teacher-outputs/minilm-train-aug10.safetensors")
    assert record["teacher_outputs"]["sha256"] == sha256_of_file(outputs)
    torch.set_num_threads(1)
    model = AlbertForSequenceClassification.from_pretrained(str(example), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(example))
    dev = EncodedDataset(tokenizer, read_examples(SST2_DEV, labels=["negative", "positive"]),
                         record["options"]["distill"]["max_length"])
    assert accuracy_of(model, dev, tokenizer) == pytest.approx(record["student"]["dev_accuracy"], abs=1e-9)
    per_call = depth_accuracies(model, dev, DataCollatorWithPadding(tokenizer), 128)
    assert per_call == pytest.approx(record["student"]["dev_accuracy_per_call"], abs=1e-9)
    assert len(per_call) == model.config.num_hidden_layers
    return record, model


@pytest.mark.slow
def test_committed_distilled_example_keeps_its_accuracy_claim():
    """examples/sst2-albert-distilled: all 740,839 rows, multi-depth, started from the committed example."""
    from pathlib import Path

    record, model = _committed_example_scores_its_record("sst2-albert-distilled")
    assert record["teacher_outputs"]["texts"]["rows"] == 740839 and record["options"]["multi_depth"] is True
    assert Path(record["student"]["init"]).name == "sst2-albert"
    assert model.config.num_hidden_layers == 4


@pytest.mark.slow
def test_committed_compressed_distilled_example_keeps_its_accuracy_claim():
    """examples/sst2-albert-distilled-compressed: 2 calls, heads 2 and 3 removed (still zero), FFN 512."""
    from edge_albert.compress.prune import pruned_heads_are_zero
    from edge_albert.hf.checkpoint import load_checkpoint

    record, model = _committed_example_scores_its_record("sst2-albert-distilled-compressed")
    config = load_checkpoint(model.name_or_path).config
    assert (config.num_hidden_layers, config.kept_heads, config.intermediate_size) == (2, [0, 1], 512)
    assert pruned_heads_are_zero(model)
