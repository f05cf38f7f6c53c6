"""edge_albert.finetune: data reader, tokenizer training, a tiny end-to-end run, the committed example."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from tests.project_data import DATA_DIR
from edge_albert.errors import DataError, EdgeAlbertError
from edge_albert.finetune import (
    FinetuneConfig,
    build_tokenizer,
    check_tokenizer,
    finetune,
    predict,
    read_examples,
    train_sentencepiece,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "sst2-albert"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- reader


def test_reads_tsv_with_index_and_name_labels(tmp_path):
    path = write(tmp_path / "d.tsv", 'sentence\tlabel\n"quoted start is kept\t1\n\nbad film \t negative\n')
    examples = read_examples(path)
    assert [(e.text, e.label, e.line) for e in examples] == [('"quoted start is kept', 1, 2), ("bad film", 0, 4)]


def test_reads_csv_with_pairs_quotes_and_multiline_records(tmp_path):
    path = write(tmp_path / "d.csv", 'premise,hypothesis,label\n"a, b",c,1\n"two\nlines",d,0\n')
    examples = read_examples(path, text_column="premise", pair_column="hypothesis", labels=["no", "yes"])
    assert [(e.text, e.text_pair, e.label, e.line) for e in examples] == [
        ("a, b", "c", 1, 2), ("two\nlines", "d", 0, 3)
    ]


def test_reads_jsonl_with_pairs(tmp_path):
    rows = [{"q": "is it good?", "a": "yes it is", "y": 1}, {"q": "bad?", "a": "no", "y": "negative"}]
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    examples = read_examples(path, text_column="q", pair_column="a", label_column="y")
    assert [(e.text, e.text_pair, e.label) for e in examples] == [("is it good?", "yes it is", 1), ("bad?", "no", 0)]


def test_reads_the_real_sst2_dev_split():
    dev = DATA_DIR / "glue-sst2" / "dev.tsv"
    assert dev.is_file(), f"{dev} is missing: it is part of the repository (data/README.md)"
    examples = read_examples(dev)
    assert len(examples) == 872 and sum(e.label for e in examples) == 444


@pytest.mark.parametrize(
    "name, text, kwargs, message",
    [
        ("d.tsv", "sentence\tlabel\nok\t1\ntoo\tmany\t0\n", {}, r"d\.tsv:3: 3 fields but the header has 2"),
        ("d.tsv", "sentence\tlabel\nok\t1\nfine\t2\n", {}, r"d\.tsv:3: label '2' is neither"),
        ("d.tsv", "sentence\tlabel\nok\t1\nfine\tpositiv\n", {}, r"d\.tsv:3: label 'positiv'"),
        ("d.tsv", "sentence\tlabel\nok\t1\n  \t0\n", {}, r"d\.tsv:3: field 'sentence' is empty"),
        ("d.tsv", "text\tlabel\nok\t1\n", {}, r"d\.tsv:2: no 'sentence' field \(fields: text, label\)"),
        ("d.tsv", "sentence\tlabel\n", {}, r"no examples"),
        ("d.csv", 'sentence,label\nok,1\n"multi\nline",1\nbad,-1\n', {}, r"d\.csv:5: label '-1'"),
        ("d.csv", 's,label\nok,1\n', {"pair_column": "p", "text_column": "s"}, r"d\.csv:2: no 'p' field"),
        ("d.jsonl", '{"sentence": "ok", "label": 1}\n{"sentence": "x", "label": 1\n', {}, r"d\.jsonl:2: not valid JSON"),
        ("d.jsonl", '{"sentence": "ok", "label": 1}\n\n[1, 2]\n', {}, r"d\.jsonl:3: expected a JSON object"),
        ("d.jsonl", '{"sentence": "ok", "label": true}\n', {}, r"d\.jsonl:1: label True"),
        ("d.jsonl", '{"sentence": "ok", "label": 0.5}\n', {}, r"d\.jsonl:1: label 0.5"),
        ("d.jsonl", '{"sentence": 3, "label": 0}\n', {}, r"d\.jsonl:1: field 'sentence' must be text"),
        ("d.txt", "sentence\tlabel\n", {}, r"cannot tell the format"),
    ],
)
def test_bad_rows_raise_data_error_with_line_numbers(tmp_path, name, text, kwargs, message):
    with pytest.raises(DataError, match=message):
        read_examples(write(tmp_path / name, text), **kwargs)


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_bytes(b"sentence\tlabel\nok\t1\nbad \xff byte\t0\n")
    with pytest.raises(DataError, match=r"d\.tsv:3: not valid UTF-8"):
        read_examples(path)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_examples(tmp_path / "absent.tsv")


# --------------------------------------------------------------------------- tokenizer

POSITIVE = ["great", "wonderful", "superb", "moving", "delightful", "brilliant", "charming", "funny"]
NEGATIVE = ["awful", "boring", "dreadful", "tedious", "clumsy", "bland", "painful", "stupid"]
FILLER = ["the", "movie", "film", "story", "acting", "was", "is", "really", "quite", "a", "plot", "ending"]


def synthetic_rows(count: int, seed: int = 0):
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        label = i % 2
        words = rng.sample(FILLER, 4) + [rng.choice(POSITIVE if label else NEGATIVE)]
        rng.shuffle(words)
        rows.append((" ".join(words).capitalize() + " .", label))
    return rows


def test_sentencepiece_has_albert_layout_and_hf_tokenizer_is_not_degenerate(tmp_path):
    import sentencepiece as spm
    from tokenizers import Tokenizer

    texts = [t for t, _ in synthetic_rows(60)]
    proto = train_sentencepiece(texts, vocab_size=120)
    processor = spm.SentencePieceProcessor(model_proto=proto)
    assert [processor.id_to_piece(i) for i in range(5)] == ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    assert processor.bos_id() == -1 and processor.eos_id() == -1

    tokenizer = build_tokenizer(proto, tmp_path / "tok", check_texts=texts)
    assert {p.name for p in (tmp_path / "tok").iterdir()} >= {"spiece.model", "tokenizer.json", "tokenizer_config.json"}
    assert (tmp_path / "tok" / "spiece.model").read_bytes() == proto
    assert json.loads((tmp_path / "tok" / "tokenizer_config.json").read_text())["do_lower_case"] is True

    ids = tokenizer("The Movie was GREAT .")["input_ids"]
    assert ids[0] == 2 and ids[-1] == 3 and 1 not in ids
    assert ids == tokenizer("the movie was great .")["input_ids"]  # lower-cased like ALBERT
    assert Tokenizer.from_file(str(tmp_path / "tok" / "tokenizer.json")).encode("The Movie was GREAT .").ids == ids
    pair = tokenizer("great film", "boring plot", return_token_type_ids=True)
    assert pair["input_ids"].count(3) == 2 and set(pair["token_type_ids"]) == {0, 1}


def test_check_tokenizer_refuses_the_all_unk_trap(tmp_path):
    """transformers 5: AlbertTokenizer(vocab_file=...) encodes every word as <unk>; the check must catch it."""
    import sentencepiece as spm
    from transformers import AlbertTokenizer

    texts = [t for t, _ in synthetic_rows(40)]
    proto = train_sentencepiece(texts, vocab_size=100)
    (tmp_path / "spiece.model").write_bytes(proto)
    broken = AlbertTokenizer(vocab_file=str(tmp_path / "spiece.model"))
    with pytest.raises(EdgeAlbertError, match="<unk>"):
        check_tokenizer(broken, spm.SentencePieceProcessor(model_proto=proto), texts)


# --------------------------------------------------------------------------- end to end

TINY = dict(
    vocab_size=150, embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
    intermediate_size=48, max_position_embeddings=32, max_length=32, dropout=0.0, classifier_dropout=0.0,
    epochs=25, batch_size=8, learning_rate=3e-3, warmup_ratio=0.1, threads=1, eval_every_epoch=False,
)


def test_tiny_finetune_end_to_end(tmp_path):
    from safetensors import safe_open
    from transformers import AlbertForSequenceClassification  # noqa: F401  (import time is not training time)

    from edge_albert.hf.checkpoint import load_checkpoint

    rows = synthetic_rows(56)
    train = write(tmp_path / "train.tsv", "sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows[:48]))
    dev = write(tmp_path / "dev.jsonl", "".join(json.dumps({"sentence": t, "label": y}) + "\n" for t, y in rows[48:]))
    out = tmp_path / "ckpt"
    started = time.perf_counter()
    result = finetune(train, out, dev, FinetuneConfig(**TINY), log=lambda line: None)
    assert time.perf_counter() - started < 60

    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "finetune_config.json", "model.safetensors", "spiece.model", "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ckpt")], "staging directory left behind"
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["AlbertForSequenceClassification"]
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert (config["num_hidden_groups"], config["inner_group_num"], config["num_hidden_layers"]) == (1, 1, 2)
    with safe_open(str(out / "model.safetensors"), "pt") as handle:
        dtypes = {str(handle.get_slice(name).get_dtype()) for name in handle.keys()}
    assert dtypes == {"F16"}

    checkpoint = load_checkpoint(out)
    assert checkpoint.labels == ["negative", "positive"]
    assert checkpoint.tokenizer_settings["special_tokens"]["cls_id"] == 2
    assert checkpoint.config.vocab_size == result.vocab_size <= 150
    assert result.tokenizer_agreement == 1.0

    # The task is learnable (one sentiment word per sentence): the model must have learnt it,
    # and the accuracy reported is the one of the saved float16 weights reloaded in float32.
    assert result.history[-1]["train_loss"] < 0.2
    assert result.dev_accuracy == pytest.approx(result.dev_accuracy_before_save, abs=0.13)
    assert result.dev_accuracy >= 0.75
    labels = [label for label, _ in predict(out, ["the film was great and superb .", "boring , awful plot ."])]
    assert labels == ["positive", "negative"]

    with pytest.raises(EdgeAlbertError, match="already exists"):
        finetune(train, out, None, FinetuneConfig(**TINY), log=lambda line: None)


def test_maximal_texts_drops_phrases_cut_from_longer_texts():
    from edge_albert.finetune import _maximal_texts

    texts = ["a good movie", "good movie", "goodness", "good", "movie", "a good movie", "plot"]
    assert sorted(_maximal_texts(texts)) == ["a good movie", "goodness", "plot"]


def test_tiny_finetune_with_masked_lm_warmup(tmp_path):
    rows = synthetic_rows(48, seed=1)
    train = write(tmp_path / "train.csv", "sentence,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    lines = []
    config = FinetuneConfig(**{**TINY, "epochs": 15, "mlm_epochs": 3, "token_mask_prob": 0.1})
    result = finetune(train, tmp_path / "ckpt", None, config, log=lines.append)
    assert any("masked-LM warm-up on 48 texts" in line for line in lines)
    assert any(line.startswith("mlm step") for line in lines)
    assert result.dev_accuracy is None and result.history[-1]["train_loss"] < 0.5
    assert (tmp_path / "ckpt").stat().st_mode & 0o777 == 0o755


def test_interrupted_run_resumes_from_its_last_trainer_checkpoint(tmp_path, monkeypatch):
    """Trainer checkpoints go to OUT.partial/ each epoch; rerunning the same command continues, not restarts."""
    from transformers import Trainer

    rows = synthetic_rows(56, seed=3)
    train = write(tmp_path / "train.tsv", "sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows[:48]))
    dev = write(tmp_path / "dev.tsv", "sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows[48:]))
    config = FinetuneConfig(**{**TINY, "epochs": 4, "eval_every_epoch": True})
    save = Trainer._save_checkpoint

    def save_then_crash(self, *args, **kwargs):
        save(self, *args, **kwargs)
        if self.state.epoch >= 2:
            raise KeyboardInterrupt  # killed after the second epoch's checkpoint

    monkeypatch.setattr(Trainer, "_save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        finetune(train, tmp_path / "ckpt", dev, config, log=lambda line: None)
    assert not (tmp_path / "ckpt").exists()
    work = tmp_path / "ckpt.partial"
    assert sorted(p.name for p in (work / "trainer").iterdir()) == ["checkpoint-12"]  # 48 rows / 8 = 6 steps an epoch
    assert (work / "tokenizer" / "spiece.model").is_file() and (work / "run.json").is_file()

    monkeypatch.setattr(Trainer, "_save_checkpoint", save)
    lines = []
    result = finetune(train, tmp_path / "ckpt", dev, config, log=lines.append)
    assert any(line.startswith("resuming from") and line.endswith("checkpoint-12") for line in lines)
    shown = [line for line in lines if line.startswith("epoch ")]
    assert [line.split()[1] for line in shown] == ["3", "4"]  # only the epochs left were trained
    assert [(e["epoch"], e["step"]) for e in result.history] == [(1, 6), (2, 12), (3, 18), (4, 24)]
    assert all("dev_accuracy" in e for e in result.history)
    assert result.dev_accuracy == pytest.approx(result.history[-1]["dev_accuracy"], abs=0.13)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "dev.tsv", "train.tsv"]  # work dir removed

    # Other settings: the leftover of a different run is discarded, training starts from step 0.
    monkeypatch.setattr(Trainer, "_save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        finetune(train, tmp_path / "other", dev, config, log=lambda line: None)
    monkeypatch.setattr(Trainer, "_save_checkpoint", save)
    lines = []
    other = finetune(train, tmp_path / "other", dev, FinetuneConfig(**{**TINY, "epochs": 2, "seed": 5}), log=lines.append)
    assert any("starting afresh" in line for line in lines) and not any(line.startswith("resuming") for line in lines)
    assert [e["step"] for e in other.history] == [6, 12]


def test_interrupted_overwrite_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    """The checkpoint goes through edge_albert.atomic (tests/test_atomic.py kills writers at every step)."""
    import edge_albert.atomic as atomic

    rows = synthetic_rows(24, seed=2)
    train = write(tmp_path / "train.csv", "sentence,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    config = FinetuneConfig(**{**TINY, "epochs": 1})
    finetune(train, tmp_path / "ckpt", None, config, log=lambda line: None)
    before = {p.name: p.read_bytes() for p in (tmp_path / "ckpt").iterdir()}

    def interrupt(step):
        if step == "written":
            raise KeyboardInterrupt  # Ctrl-C after the new checkpoint was saved, before it is swapped in

    monkeypatch.setattr(atomic, "fault_hook", interrupt)
    with pytest.raises(KeyboardInterrupt):
        finetune(train, tmp_path / "ckpt", None, FinetuneConfig(**{**TINY, "epochs": 1, "seed": 7}), overwrite=True,
                 log=lambda line: None)
    assert {p.name: p.read_bytes() for p in (tmp_path / "ckpt").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "train.csv"]


def test_overwrite_refuses_a_directory_that_is_not_a_checkpoint_before_training(tmp_path):
    train = write(tmp_path / "train.tsv", "sentence\tlabel\ngood\t1\n")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(EdgeAlbertError, match="not a checkpoint"):
        finetune(train, tmp_path / "notes", None, FinetuneConfig(**TINY), overwrite=True, log=lambda line: None)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


def test_a_run_refused_before_its_first_epoch_leaves_no_work_directory(tmp_path):
    train = write(tmp_path / "train.tsv", "sentence\tlabel\nabcdefghij klmnop\t1\nqrstuv wxyz\t0\n")
    with pytest.raises(EdgeAlbertError, match="smaller than the 27 distinct characters"):
        finetune(train, tmp_path / "ckpt", None, FinetuneConfig(**{**TINY, "vocab_size": 20}), log=lambda line: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.tsv"]  # no ckpt, no ckpt.partial


def test_bad_training_file_fails_before_writing_anything(tmp_path):
    train = write(tmp_path / "train.tsv", "sentence\tlabel\ngood\t1\nbad\t7\n")
    with pytest.raises(DataError, match=r"train\.tsv:3"):
        finetune(train, tmp_path / "ckpt", None, FinetuneConfig(**TINY), log=lambda line: None)
    assert list(tmp_path.iterdir()) == [train]


# --------------------------------------------------------------------------- committed example


def test_committed_example_checkpoint():
    """examples/sst2-albert: loads with the project's reader, small, and really classifies SST-2."""
    from edge_albert.hf.checkpoint import load_checkpoint
    from edge_albert.finetune import evaluate

    assert EXAMPLE.is_dir(), f"{EXAMPLE} is missing"
    size = sum(p.stat().st_size for p in EXAMPLE.iterdir())
    assert size < 10 * 1024 * 1024
    checkpoint = load_checkpoint(EXAMPLE)
    assert checkpoint.architecture == "AlbertForSequenceClassification"
    assert checkpoint.labels == ["negative", "positive"]
    reference = DATA_DIR / "albert-base-v2" / "spiece.model"
    assert (EXAMPLE / "spiece.model").read_bytes() != reference.read_bytes()
    labels = [label for label, _ in predict(EXAMPLE, ["a gorgeous, witty, seductive movie",
                                                      "a dull, tedious and painfully unfunny mess"])]
    assert labels == ["positive", "negative"]
    dev = DATA_DIR / "glue-sst2" / "dev.tsv"
    assert dev.is_file(), f"{dev} is missing: it is part of the repository (data/README.md)"
    assert evaluate(EXAMPLE, read_examples(dev)) >= 0.80


def test_multi_depth_training_continues_a_checkpoint_without_new_parameters(tmp_path):
    """finetune(init_from=..., multi_depth=True): same tokenizer, same tensors, every depth scored."""
    from safetensors import safe_open

    rows = synthetic_rows(56)
    train = write(tmp_path / "train.tsv", "sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows[:48]))
    dev = write(tmp_path / "dev.tsv", "sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows[48:]))
    first = finetune(train, tmp_path / "first", dev, FinetuneConfig(**{**TINY, "epochs": 3}), log=lambda line: None)
    config = FinetuneConfig(**{**TINY, "epochs": 20, "multi_depth": True, "init_from": str(first.out_dir),
                               "eval_every_epoch": True})
    lines = []
    second = finetune(train, tmp_path / "second", dev, config, log=lines.append)

    assert "continuing from" in lines[0]
    for name in ("spiece.model", "tokenizer.json"):
        assert (second.out_dir / name).read_bytes() == (first.out_dir / name).read_bytes()
    with safe_open(str(first.out_dir / "model.safetensors"), "pt") as a, \
            safe_open(str(second.out_dir / "model.safetensors"), "pt") as b:
        assert sorted(a.keys()) == sorted(b.keys())
    per_call = second.history[-1]["dev_accuracy_per_call"]
    assert len(per_call) == TINY["num_hidden_layers"]
    assert per_call[-1] == second.history[-1]["dev_accuracy"]
    # one sentiment word per sentence: with the loss on every call, even the first call learns it
    assert per_call[0] >= 0.75
    assert json.loads((second.out_dir / "finetune_config.json").read_text())["multi_depth"] is True


def test_init_from_a_checkpoint_with_other_labels_is_refused(tmp_path):
    rows = synthetic_rows(16)
    train = write(tmp_path / "train.tsv", "sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    config = FinetuneConfig(**{**TINY, "init_from": str(EXAMPLE)})
    with pytest.raises(EdgeAlbertError, match="has labels"):
        finetune(train, tmp_path / "out", None, config, labels=["bad", "good"], log=lambda line: None)
    assert not (tmp_path / "out").exists()


def test_init_from_a_folder_that_is_not_a_classifier_checkpoint_is_one_line(tmp_path):
    from click.testing import CliRunner

    from edge_albert.cli import main
    from tests.checkpoints import make_albert_checkpoint

    train = write(tmp_path / "train.tsv", "sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in synthetic_rows(16)))
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    qa = make_albert_checkpoint(tmp_path / "qa", task="question-answering")
    for folder, named in ((tmp_path / "empty", "config.json"), (tmp_path / "broken", "config.json"),
                          (qa, "is an AlbertForQuestionAnswering")):
        result = CliRunner().invoke(main, ["finetune", str(train), "-o", str(tmp_path / "out"), "--init-from",
                                           str(folder)])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: --init-from {folder}") and named in lines[0], lines
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_a_second_run_on_the_same_output_is_refused_while_the_first_holds_it(tmp_path):
    from edge_albert.errors import OutputError
    from tests.holder import hold_in_child

    train = write(tmp_path / "train.tsv", "sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in synthetic_rows(16)))
    holder = hold_in_child(tmp_path / "ckpt", 120)
    try:
        with pytest.raises(OutputError, match=rf"ckpt is being written by another run \(pid {holder.pid}\)"):
            finetune(train, tmp_path / "ckpt", None, FinetuneConfig(**TINY), log=lambda line: None)
        assert sorted(p.name for p in tmp_path.iterdir()) == [".ckpt.lock", "train.tsv"]  # no ckpt.partial
    finally:
        holder.kill()
        holder.wait()
