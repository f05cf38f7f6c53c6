"""The device tokenizer (tokenizers + tokenizer.json) against transformers 5's AutoTokenizer.

Both the real albert-base-v2 SentencePiece model and a small one trained here are converted by
transformers (directory with config.json, as a checkpoint has it); the device side loads only the
tokenizer.json that transformers writes, exactly what a bundle carries. Every comparison is
exact: ids, attention masks, token type ids, offsets and the row -> input mapping.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.project_data import data_file

from edge_albert.tokenizer import AlbertTokenizer

REPO = Path(__file__).resolve().parents[1]
ADVERSARIAL = Path(__file__).resolve().parent / "data" / "tokenizer_adversarial.json"
BATCH = 32



def sst2_sentences(split: str = "dev") -> list:
    with open(data_file(f"glue-sst2/{split}.tsv"), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [row["sentence"] for row in rows]


def adversarial() -> dict:
    return json.loads(ADVERSARIAL.read_text(encoding="utf-8"))


def squad_pairs() -> list:
    data = json.loads(data_file("squad-dev-v2.0-small.json").read_text(encoding="utf-8"))
    return [(qa["question"], paragraph["context"])
            for article in data["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]]


def hf_tokenizer_dir(directory: Path, spiece: Path) -> Path:
    """A checkpoint-like directory: config.json + spiece.model, then transformers' own tokenizer.json."""
    from transformers import AutoTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "spiece.model").write_bytes(spiece.read_bytes())
    (directory / "config.json").write_text(json.dumps({"model_type": "albert", "architectures": ["AlbertModel"]}))
    AutoTokenizer.from_pretrained(str(directory)).save_pretrained(str(directory))
    assert (directory / "tokenizer.json").is_file()
    return directory


def train_small_spiece(out: Path) -> Path:
    """A 2,000-piece Unigram model on SST-2 train text, with ALBERT's special pieces at ids 0..4."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sst2_sentences("train")[:20000]), model_writer=model, vocab_size=2000,
        model_type="unigram", pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
        control_symbols=["[CLS]", "[SEP]", "[MASK]"], normalization_rule_name="nmt_nfkc",
        minloglevel=2, num_threads=1,
    )
    out.write_bytes(model.getvalue())
    return out


@pytest.fixture(scope="module", params=["albert-base-v2", "trained-small"])
def tokenizers_pair(request, tmp_path_factory):
    """(transformers reference, device tokenizer) for one SentencePiece model."""
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp(request.param)
    if request.param == "albert-base-v2":
        spiece = data_file("albert-base-v2/spiece.model")
    else:
        spiece = train_small_spiece(root / "trained.model")
    directory = hf_tokenizer_dir(root / "ckpt", spiece)
    reference = AutoTokenizer.from_pretrained(str(directory))
    device = AlbertTokenizer.from_file(directory / "tokenizer.json")
    probe = device.encode(["hello world, this is a test of the movie"]).input_ids[0].tolist()
    assert len(set(probe[1:-1])) > 1, f"degenerate tokenizer for {request.param}: {probe}"
    return reference, device


def reference_rows(reference, texts, pairs=None, **kwargs) -> dict:
    out = reference(texts, pairs, padding=True, return_token_type_ids=True, return_attention_mask=True,
                    return_offsets_mapping=True, **kwargs)
    rows = {key: [list(row) for row in out[key]]
            for key in ("input_ids", "attention_mask", "token_type_ids", "offset_mapping")}
    rows["example"] = list(out.get("overflow_to_sample_mapping", range(len(texts))))
    return rows


def device_rows(device, texts, pairs=None, **kwargs) -> dict:
    encoded = device.encode(texts, pairs, **kwargs)
    return {
        "input_ids": encoded.input_ids.tolist(),
        "attention_mask": encoded.attention_mask.tolist(),
        "token_type_ids": encoded.token_type_ids.tolist(),
        "offset_mapping": [[tuple(o) for o in row] for row in encoded.offsets],
        "example": encoded.example_index.tolist(),
    }


def assert_identical(reference, device, texts, pairs=None, **kwargs) -> int:
    """Compare one batch; on a difference name the first differing input and show both id lists."""
    expected = reference_rows(reference, texts, pairs, **kwargs)
    actual = device_rows(device, texts, pairs, **kwargs)
    assert actual["example"] == expected["example"], (
        f"row -> input mapping differs ({kwargs}): device {actual['example']} vs transformers {expected['example']}")
    for key in ("input_ids", "attention_mask", "token_type_ids", "offset_mapping"):
        ours, theirs = actual[key], expected[key]
        assert len(ours) == len(theirs), f"{key}: {len(ours)} rows vs transformers {len(theirs)} ({kwargs})"
        for row, (a, b) in enumerate(zip(ours, theirs)):
            if [tuple(x) if isinstance(x, (list, tuple)) else x for x in a] != \
                    [tuple(x) if isinstance(x, (list, tuple)) else x for x in b]:
                index = expected["example"][row]
                shown = repr(texts[index]) if pairs is None else repr((texts[index], pairs[index]))
                pytest.fail(f"{key} differ ({kwargs}) for input {index}: {shown[:300]}\n"
                            f"device:       {actual['input_ids'][row]}\ntransformers: {expected['input_ids'][row]}"
                            + ("" if key == "input_ids" else f"\ndevice {key}: {a}\ntransformers {key}: {b}"))
    return len(texts)


def batches(items, size=BATCH):
    for start in range(0, len(items), size):
        yield items[start:start + size]


@pytest.mark.parametrize("max_length", [128, 16])
def test_sst2_dev_identical(tokenizers_pair, max_length):
    reference, device = tokenizers_pair
    sentences = sst2_sentences("dev")
    assert len(sentences) == 872
    compared = sum(assert_identical(reference, device, batch, truncation=True, max_length=max_length)
                   for batch in batches(sentences))
    assert compared == 872


@pytest.mark.parametrize("max_length", [512, 128, 8])
def test_adversarial_texts_identical(tokenizers_pair, max_length):
    reference, device = tokenizers_pair
    texts = [entry["text"] for entry in adversarial()["texts"]]
    assert len(texts) >= 40 and "" in texts and any(len(t) == 10000 for t in texts)
    for batch in batches(texts, 8):
        assert_identical(reference, device, batch, truncation=True, max_length=max_length)
    # One at a time too: no padding, every length exact.
    for text in texts:
        assert_identical(reference, device, [text], truncation=True, max_length=max_length)


def test_adversarial_texts_untruncated_identical(tokenizers_pair):
    reference, device = tokenizers_pair
    texts = [entry["text"] for entry in adversarial()["texts"]]
    assert len(texts) >= 40 and "" in texts and any(len(t) == 10000 for t in texts)  # the loop below checks them all
    for batch in batches(texts, 8):
        assert_identical(reference, device, batch)


def all_pairs() -> list:
    return [(p["text"], p["text_pair"]) for p in adversarial()["pairs"]] + squad_pairs()


@pytest.mark.parametrize("max_length", [384, 64])
def test_pairs_longest_first_identical(tokenizers_pair, max_length):
    reference, device = tokenizers_pair
    pairs = all_pairs()
    assert len(pairs) >= 27
    for batch in batches(pairs, 8):
        questions, contexts = [q for q, _ in batch], [c for _, c in batch]
        assert_identical(reference, device, questions, contexts, truncation="longest_first", max_length=max_length)


@pytest.mark.parametrize("max_length,stride", [(384, 128), (64, 16), (48, 0)])
def test_pairs_only_second_with_overflow_identical(tokenizers_pair, max_length, stride):
    """The question-answering call: context windows overlapping by `stride`, offsets into the context."""
    reference, device = tokenizers_pair
    max_question = max_length // 2
    pairs = [(device.shorten(q, max_question)[0], c) for q, c in all_pairs()]
    windows = 0
    for batch in batches(pairs, 8):
        questions, contexts = [q for q, _ in batch], [c for _, c in batch]
        assert_identical(reference, device, questions, contexts, truncation="only_second", max_length=max_length,
                         stride=stride, return_overflowing_tokens=True)
        windows += device.encode(questions, contexts, truncation="only_second", max_length=max_length,
                                 stride=stride, return_overflowing_tokens=True).num_rows
    assert windows > len(pairs), "no context overflowed into a second window: the test lost its point"


def test_shorten_keeps_whole_words_within_limit(tokenizers_pair):
    _, device = tokenizers_pair
    question = " ".join(["why"] * 200) + "?"
    short, cut = device.shorten(question, 10)
    assert cut and device.count_tokens(short) <= 10 and question.startswith(short)
    long_word = "x" * 500
    short, cut = device.shorten(long_word, 7)
    assert cut and 0 < device.count_tokens(short) <= 7
    assert device.shorten("short question", 10) == ("short question", False)


def test_truncation_is_reported(tokenizers_pair):
    _, device = tokenizers_pair
    encoded = device.encode(["a " * 100, "short", "", "   "], max_length=16)
    assert encoded.truncated == [True, False, False, False]
    assert encoded.input_ids.shape == (4, 16)
    assert encoded.lengths().tolist() == [16, 3, 2, 2]
