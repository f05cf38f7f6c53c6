"""The on-device runtime against the TFLite interpreter run by hand and against PyTorch.

Bundles come from the real converter (tiny random checkpoints, max_seq_len 32). "By hand" means:
transformers' tokenizer, one text at a time, unpadded, through ai_edge_litert's Interpreter. The
runtime (own tokenizer, sorted batches, bucket padding) must give the same outputs, and stay within
the bundle's recorded runtime tolerance of the PyTorch model.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.project_data import data_file

from edge_albert import (BundleError, FeatureExtractor, QuestionAnswerer, RuntimeBackendError, TextClassifier,
                         TokenClassifier, load_model)
from edge_albert.extras import WHEEL
from edge_albert.runtime import bucket_length, describe_min_runtime, find_backend
from tests.runtime_bundles import MAX_SEQ_LEN, bundle_for, checkpoint_for

REPO = Path(__file__).resolve().parents[1]
ADVERSARIAL = json.loads((Path(__file__).parent / "data" / "tokenizer_adversarial.json").read_text())
INPUTS = ("input_ids", "attention_mask", "token_type_ids")



def sst2_texts(count: int) -> list:
    with open(data_file("glue-sst2/dev.tsv"), newline="", encoding="utf-8") as handle:
        return [row["sentence"] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)][:count]


def squad_pairs() -> list:
    data = json.loads(data_file("squad-dev-v2.0-small.json").read_text())
    return [(qa["question"], p["context"]) for a in data["data"] for p in a["paragraphs"] for qa in p["qas"]]


TEXTS = sst2_texts(24) + [e["text"] for e in ADVERSARIAL["texts"] if e["id"] in (
    "empty", "whitespace_only", "emoji", "accents_fr", "cjk_zh", "long_10000_chars", "control_chars")]


@pytest.fixture(scope="session")
def bundle_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runtime-bundles")


def hand_run(model_path: Path, feeds: list) -> list:
    """The interpreter called directly, one feed at a time."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(model_path)).get_signature_runner("serving_default")
    return [runner(**{name: np.asarray(feed[name], dtype=np.int32) for name in INPUTS}) for feed in feeds]


def reference_tokenizer(checkpoint: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(checkpoint))


def runtime_tolerance(bundle_path: Path) -> float:
    validation = json.loads((bundle_path / "manifest.json").read_text())["validation"]
    tolerance = validation.get("runtime_tolerance") or validation.get("tolerance")
    assert tolerance, f"the manifest records no tolerance: {validation}"
    return float(tolerance)


# -- unit level --------------------------------------------------------------------------------
def test_bucket_length_rounds_up_and_caps():
    assert [bucket_length(n, 128) for n in (1, 8, 9, 33, 100, 128)] == [8, 8, 16, 64, 128, 128]
    assert bucket_length(300, 256) == 256
    assert bucket_length(20, 32) == 32


def test_backend_order_prefers_ai_edge_litert_and_unknown_is_refused():
    assert find_backend().name == "ai_edge_litert"
    with pytest.raises(RuntimeBackendError, match="unknown backend 'nope'"):
        find_backend("nope")


def test_missing_backend_says_what_to_install(monkeypatch):
    """The hint names the wheel's extras (edge_albert/extras.py): the package is installed from the wheel."""
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)  # as on a machine without it
    with pytest.raises(RuntimeBackendError) as raised:
        find_backend("tflite_runtime")
    message = str(raised.value)
    assert message.startswith("no usable TFLite interpreter (tflite_runtime: ")
    assert f"pip install '{WHEEL}[litert]'" in message and f"pip install '{WHEEL}[tflite-runtime]'" in message


def test_describe_min_runtime():
    assert describe_min_runtime({"ai-edge-litert": "2.0"}) == "ai-edge-litert >= 2.0"


def test_unsupported_op_version_names_the_runtime_needed(bundle_root, monkeypatch):
    """What tflite-runtime 2.14 says about TF 2.21's dynamic-int8 models, turned into advice."""
    from edge_albert import runtime

    path = bundle_for(bundle_root, "text-classification")

    class OldInterpreter:
        def __init__(self, model_path, num_threads=None):
            raise ValueError("Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'. An older "
                             "version of this builtin might be supported.")

    monkeypatch.setattr(runtime, "find_backend",
                        lambda backend=None: runtime.Backend("tflite_runtime", "2.14.0", OldInterpreter))
    with pytest.raises(RuntimeBackendError) as error:
        TextClassifier.load(path)
    message = str(error.value)
    assert "tflite_runtime 2.14.0 cannot run" in message and "FULLY_CONNECTED' version '12'" in message
    assert "ai-edge-litert >= 2.0" in message


# -- text classification -----------------------------------------------------------------------
def test_classifier_equals_hand_run_and_pytorch(bundle_root):
    import torch
    from transformers import AutoModelForSequenceClassification

    path = bundle_for(bundle_root, "text-classification")
    checkpoint = checkpoint_for(bundle_root, "text-classification")
    classifier = TextClassifier.load(path, num_threads=2)
    logits = classifier.logits(TEXTS)

    tokenizer = reference_tokenizer(checkpoint)
    feeds = [tokenizer(text, truncation=True, max_length=MAX_SEQ_LEN, return_token_type_ids=True, return_tensors="np")
             for text in TEXTS]
    by_hand = np.concatenate([out["logits"] for out in hand_run(path / "model.tflite", feeds)])
    np.testing.assert_allclose(logits, by_hand, rtol=0, atol=1e-6)

    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint)).eval()
    batch = tokenizer(TEXTS, truncation=True, max_length=MAX_SEQ_LEN, padding=True, return_tensors="pt")
    with torch.no_grad():
        reference = model(**batch).logits.numpy()
    assert np.abs(logits - reference).max() <= runtime_tolerance(path)

    predictions = classifier.predict(TEXTS)
    labels = ["negative", "positive"]
    assert [p.label for p in predictions] == [labels[i] for i in reference.argmax(axis=1)]
    for prediction in predictions:
        assert abs(sum(prediction.scores.values()) - 1.0) < 1e-9
        assert prediction.score == max(prediction.scores.values())
    truncated = {text: p.truncated for text, p in zip(TEXTS, predictions)}
    assert truncated[ADVERSARIAL_TEXT("long_10000_chars")] is True
    assert truncated[""] is False and truncated[ADVERSARIAL_TEXT("whitespace_only")] is False


def ADVERSARIAL_TEXT(identifier: str) -> str:
    return next(e["text"] for e in ADVERSARIAL["texts"] if e["id"] == identifier)


def test_same_padded_batch_is_bit_identical_to_hand_run(bundle_root):
    """With identical input arrays (bucket padding included) the runtime is the interpreter, exactly."""
    path = bundle_for(bundle_root, "text-classification")
    classifier = TextClassifier.load(path)
    encoded = classifier.tokenizer.encode(TEXTS[:8], max_length=MAX_SEQ_LEN)
    outputs = classifier.session.run(encoded.input_ids, encoded.attention_mask, encoded.token_type_ids)
    width = classifier.session.padded_length(encoded.length)
    assert width >= encoded.length and width in (8, 16, 32)
    padded = {name: np.pad(getattr(encoded, name), ((0, 0), (0, width - encoded.length))) for name in INPUTS}
    (by_hand,) = hand_run(path / "model.tflite", [padded])
    assert np.array_equal(outputs["logits"], by_hand["logits"])


def test_results_do_not_depend_on_batch_composition(bundle_root):
    classifier = TextClassifier.load(bundle_for(bundle_root, "text-classification"), batch_size=4)
    together = classifier.logits(TEXTS)
    alone = np.concatenate([classifier.logits([text]) for text in TEXTS])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-6)


def test_one_row_runs_at_its_exact_length_and_batches_at_buckets(bundle_root):
    """One text per call runs at its own token count (as the PyTorch reference does; a new shape's re-allocation
    costs less than the model's work on bucket padding, see runtime.py); a batch of several rows is padded to
    its longest row rounded up to a bucket, so a server re-plans few shapes. Padding is masked: fp32 logits agree."""
    classifier = TextClassifier.load(bundle_for(bundle_root, "text-classification"), batch_size=1)
    session = classifier.session
    assert [session.padded_length(n) for n in (1, 9, 15, MAX_SEQ_LEN)] == [1, 9, 15, MAX_SEQ_LEN]
    assert [session.padded_length(n, rows=4) for n in (1, 9, 15)] == [8, 16, 16]
    texts = [" ".join(["word"] * n) for n in range(7, 15)]  # 9..16 tokens: one bucket, eight lengths
    lengths = [classifier.tokenizer.encode([t]).length for t in texts]
    assert len(set(lengths)) == len(texts) and all(9 <= n <= 16 for n in lengths)
    alone = classifier.logits(texts)  # batch_size=1: one row per call
    assert session.reallocations == len(texts)
    assert session._current_shape == (1, max(lengths))
    batched = TextClassifier.load(bundle_for(bundle_root, "text-classification"), batch_size=len(texts))
    together = batched.logits(texts)
    assert batched.session.reallocations == 1 and batched.session._current_shape == (len(texts), 16)
    np.testing.assert_allclose(alone, together, rtol=0, atol=1e-5)


def test_predictions_match_a_float64_softmax_of_the_logits(bundle_root):
    """The batched softmax and Prediction building give exactly what a per-row float64 softmax gives."""
    classifier = TextClassifier.load(bundle_for(bundle_root, "text-classification"))
    logits = classifier.logits(TEXTS)
    predictions = classifier.predict(TEXTS)
    assert len(predictions) == len(TEXTS) > 0
    for row, prediction in zip(logits, predictions):
        shifted = row.astype(np.float64) - np.max(row.astype(np.float64))
        expected = np.exp(shifted) / np.exp(shifted).sum()
        assert list(prediction.scores.values()) == expected.tolist()
        assert prediction.label == list(prediction.scores)[int(np.argmax(expected))]
        assert prediction.score == expected.max()


def test_edge_inputs_never_crash(bundle_root):
    classifier = TextClassifier.load(bundle_for(bundle_root, "text-classification"))
    results = classifier.predict(["", " ", "\n\t", "\u200b", "x" * 20000, "word " * 5000])
    assert [r.truncated for r in results] == [False, False, False, False, True, True]
    assert classifier.predict([]) == []
    assert len(classifier.predict("a single string")) == 1


def test_loading_refuses_the_wrong_task_and_a_corrupt_model(bundle_root, tmp_path):
    import shutil

    path = bundle_for(bundle_root, "text-classification")
    with pytest.raises(BundleError, match="load it with TextClassifier"):
        QuestionAnswerer.load(path)
    assert isinstance(load_model(path), TextClassifier)
    copy = tmp_path / "copy.edgealbert"
    shutil.copytree(path, copy)
    data = bytearray((copy / "model.tflite").read_bytes())
    data[-10] ^= 0xFF
    (copy / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.tflite"):
        TextClassifier.load(copy)


# -- question answering -------------------------------------------------------------------------
def brute_force_best_span(start_logits, end_logits, sequence_ids, offsets, max_tokens=30):
    """Straightforward loops over the same rule the runtime uses (softmax over [CLS] + context)."""
    allowed = [i for i, s in enumerate(sequence_ids) if s == 1]
    keep = [0] + allowed

    def probabilities(logits):
        values = np.array([logits[i] for i in keep], dtype=np.float64)
        exp = np.exp(values - values.max())
        return dict(zip(keep, exp / exp.sum()))

    ps, pe = probabilities(start_logits), probabilities(end_logits)
    best = None
    for i in allowed:
        for j in allowed:
            if i <= j < i + max_tokens and (best is None or ps[i] * pe[j] > best[2]):
                best = (offsets[i][0], offsets[j][1], ps[i] * pe[j])
    return best, ps[0] * pe[0]


def test_question_answerer_equals_hand_run_and_pytorch(bundle_root):
    import torch
    from transformers import AutoModelForQuestionAnswering

    path = bundle_for(bundle_root, "question-answering")
    checkpoint = checkpoint_for(bundle_root, "question-answering")
    answerer = QuestionAnswerer.load(path)
    pairs = squad_pairs() + [(p["text"], p["text_pair"]) for p in ADVERSARIAL["pairs"]]
    questions, contexts = [q for q, _ in pairs], [c for _, c in pairs]
    encoded, cut = answerer.encode(questions, contexts)
    assert any(cut), "no question was long enough to be cut"
    assert encoded.num_rows > 2 * len(pairs), "contexts did not overflow into several windows"
    outputs = answerer.run_encoded(encoded)

    # By hand: transformers' tokenizer with the same windows, one window at a time.
    tokenizer = reference_tokenizer(checkpoint)
    shortened = [answerer.tokenizer.shorten(q, MAX_SEQ_LEN // 2)[0] for q in questions]
    stride = max(0, min(MAX_SEQ_LEN // 4, (MAX_SEQ_LEN - MAX_SEQ_LEN // 2 - 3) // 2))
    windows = tokenizer(shortened, contexts, truncation="only_second", max_length=MAX_SEQ_LEN, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True, return_token_type_ids=True)
    assert list(windows["overflow_to_sample_mapping"]) == encoded.example_index.tolist()
    feeds = [{name: np.array([windows[name][row]]) for name in INPUTS} for row in range(encoded.num_rows)]
    by_hand = hand_run(path / "model.tflite", feeds)
    model = AutoModelForQuestionAnswering.from_pretrained(str(checkpoint)).eval()
    tolerance = runtime_tolerance(path)
    for row, hand in enumerate(by_hand):
        n = len(windows["input_ids"][row])
        for name in ("start_logits", "end_logits"):
            np.testing.assert_allclose(outputs[name][row, :n], hand[name][0], rtol=0, atol=1e-6)
        with torch.no_grad():
            reference = model(**{k: torch.tensor([windows[k][row]]) for k in INPUTS})
        assert np.abs(outputs["start_logits"][row, :n] - reference.start_logits.numpy()[0]).max() <= tolerance
        assert np.abs(outputs["end_logits"][row, :n] - reference.end_logits.numpy()[0]).max() <= tolerance

    answers = answerer.predict(questions, contexts)
    for example, answer in enumerate(answers):
        rows = [r for r in range(encoded.num_rows) if windows["overflow_to_sample_mapping"][r] == example]
        spans = [brute_force_best_span(by_hand[r]["start_logits"][0], by_hand[r]["end_logits"][0],
                                       windows.sequence_ids(r), windows["offset_mapping"][r]) for r in rows]
        found = [s for s, _ in spans if s is not None]
        assert answer.null_score == pytest.approx(min(n for _, n in spans), abs=1e-6)
        if not found:
            assert answer.no_answer and answer.answer == ""
            continue
        start, end, score = max(found, key=lambda s: s[2])
        assert (answer.start, answer.end) == (start, end), f"pair {example}: {answer} vs brute force {(start, end)}"
        assert answer.score == pytest.approx(score, abs=1e-6)
        assert answer.answer == contexts[example][start:end]
        assert answer.truncated == cut[example]


def test_question_answerer_edge_cases_and_batch_independence(bundle_root):
    answerer = QuestionAnswerer.load(bundle_for(bundle_root, "question-answering"))
    pairs = [("", ""), ("   ", "\n"), ("why " * 300, "short context"), ("What?", "x" * 5000), ("Who?", "")]
    together = answerer.predict([q for q, _ in pairs], [c for _, c in pairs])
    alone = [answerer.predict(q, c)[0] for q, c in pairs]
    for a, b in zip(together, alone):
        assert (a.answer, a.start, a.end, a.no_answer, a.truncated) == (b.answer, b.start, b.end, b.no_answer, b.truncated)
        assert a.score == pytest.approx(b.score, abs=1e-6)
    assert together[0].no_answer and together[4].no_answer and together[2].truncated
    impossible = answerer.predict(["What?"], ["some context here"], handle_impossible_answer=True)[0]
    assert impossible.no_answer == (impossible.null_score > answerer.predict(["What?"], ["some context here"])[0].score)


# -- token classification -----------------------------------------------------------------------
def test_token_classifier_equals_hand_run_and_pytorch(bundle_root):
    import torch
    from transformers import AutoModelForTokenClassification

    path = bundle_for(bundle_root, "token-classification")
    checkpoint = checkpoint_for(bundle_root, "token-classification")
    classifier = TokenClassifier.load(path)
    texts = TEXTS[:12] + ["Hello,  wörld naïve ``quoted'' 3.14", ADVERSARIAL_TEXT("long_10000_chars")]
    encoded = classifier.tokenizer.encode(texts, max_length=MAX_SEQ_LEN)
    logits = classifier.run_encoded(encoded)["logits"]
    tokenizer = reference_tokenizer(checkpoint)
    model = AutoModelForTokenClassification.from_pretrained(str(checkpoint)).eval()
    feeds = [tokenizer(t, truncation=True, max_length=MAX_SEQ_LEN, return_token_type_ids=True, return_tensors="np")
             for t in texts]
    tolerance = runtime_tolerance(path)
    results = classifier.predict(texts)
    for row, (text, feed, hand) in enumerate(zip(texts, feeds, hand_run(path / "model.tflite", feeds))):
        n = feed["input_ids"].shape[1]
        np.testing.assert_allclose(logits[row, :n], hand["logits"][0], rtol=0, atol=1e-6)
        with torch.no_grad():
            reference = model(**{k: torch.tensor(feed[k]) for k in INPUTS}).logits.numpy()[0]
        assert np.abs(logits[row, :n] - reference).max() <= tolerance
        # Word level: each word's label is its first sub-token's, and its offsets cut the word out of the text.
        word_ids = tokenizer(text, truncation=True, max_length=MAX_SEQ_LEN).word_ids()
        first_tokens = {}
        for token, word in enumerate(word_ids):
            if word is not None:
                first_tokens.setdefault(word, token)
        words = results[row].words
        assert len(words) == len(first_tokens)
        for word, token in zip(words, first_tokens.values()):
            assert word.label == ["O", "B-X", "I-X"][int(reference[token].argmax())]
            assert text[word.start:word.end] == word.word and word.word.strip() == word.word and word.word
    assert results[-1].truncated and not results[0].truncated
    assert classifier.predict([""])[0].words == []


# -- slower variants ----------------------------------------------------------------------------
@pytest.mark.slow
def test_unrolled_bundle_matches_loop_bundle(bundle_root):
    loop = TextClassifier.load(bundle_for(bundle_root, "text-classification"))
    unrolled = TextClassifier.load(bundle_for(bundle_root, "text-classification", graph="unrolled"))
    assert not unrolled.session.dynamic_length and unrolled.session.fixed_length == MAX_SEQ_LEN
    np.testing.assert_allclose(unrolled.logits(TEXTS), loop.logits(TEXTS), rtol=0, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("per_channel_dense", [True, False])
def test_dynamic_int8_within_recorded_tolerance(bundle_root, per_channel_dense):
    import torch
    from transformers import AutoModelForSequenceClassification

    path = bundle_for(bundle_root, "text-classification", quantize="dynamic-int8",
                      per_channel_dense=per_channel_dense)
    manifest = json.loads((path / "manifest.json").read_text())
    min_runtime = manifest["quantization"]["min_runtime"]
    assert ("tflite-runtime" in min_runtime) == (not per_channel_dense)
    classifier = TextClassifier.load(path)
    checkpoint = checkpoint_for(bundle_root, "text-classification")
    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint)).eval()
    batch = reference_tokenizer(checkpoint)(TEXTS, truncation=True, max_length=MAX_SEQ_LEN, padding=True,
                                            return_tensors="pt")
    with torch.no_grad():
        reference = model(**batch).logits.numpy()
    assert np.abs(classifier.logits(TEXTS) - reference).max() <= runtime_tolerance(path)


@pytest.mark.slow
def test_tensorflow_backend_gives_the_same_logits(bundle_root):
    path = bundle_for(bundle_root, "text-classification")
    litert = TextClassifier.load(path)
    tensorflow = TextClassifier.load(path, backend="tensorflow")
    assert tensorflow.session.backend.name == "tensorflow"
    np.testing.assert_allclose(tensorflow.logits(TEXTS), litert.logits(TEXTS), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_xnnpack_weight_cache_for_fixed_shape_bundles(bundle_root, tmp_path):
    unrolled = bundle_for(bundle_root, "text-classification", graph="unrolled")
    cache = tmp_path / "cache" / "model.xnnpack_cache"
    plain = TextClassifier.load(unrolled).logits(TEXTS[:6])
    first = TextClassifier.load(unrolled, weight_cache=cache).logits(TEXTS[:6])
    assert cache.is_file() and cache.stat().st_size > 0
    second = TextClassifier.load(unrolled, weight_cache=cache).logits(TEXTS[:6])
    np.testing.assert_allclose(first, plain, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(first, second)
    with pytest.raises(RuntimeBackendError, match="fixed-shape"):
        TextClassifier.load(bundle_for(bundle_root, "text-classification"), weight_cache=tmp_path / "loop.cache")


@pytest.mark.slow
def test_feature_extractor(bundle_root):
    extractor = FeatureExtractor.load(bundle_for(bundle_root, "feature-extraction"))
    features = extractor.predict(["hello world", "", "word " * 100])
    assert features[0].token_states.shape[0] == 4 and features[1].token_states.shape[0] == 2
    assert features[2].truncated and features[2].token_states.shape[0] == MAX_SEQ_LEN
    assert features[0].pooled.shape == (features[0].token_states.shape[1],)


def test_runtime_imports_no_heavy_library(bundle_root):
    """Load and predict in a fresh interpreter: no TensorFlow, PyTorch or transformers may be imported."""
    path = bundle_for(bundle_root, "text-classification")
    qa_path = bundle_for(bundle_root, "question-answering")
    script = textwrap.dedent(f"""
        import sys
        import edge_albert
        from edge_albert import TextClassifier, QuestionAnswerer
        print(TextClassifier.load({str(path)!r}).predict(["hello world", ""])[0].label)
        print(QuestionAnswerer.load({str(qa_path)!r}).predict("Who?", "Anne said hello.")[0].answer)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "torch", "transformers", "keras"))
        print("HEAVY", heavy)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=str(REPO),
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "HEAVY []" in result.stdout, result.stdout
