"""`edge-albert export-android`: what the Android demo can run is exported, everything else refused.

Real bundles come from the converter (tests/runtime_bundles.py, tiny checkpoints); the models the
converter never makes (int64 inputs, integer logits, other names) are small TF functions
converted here and wrapped with write_bundle. Tokenizer and manifest refusals need no model.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge_albert.android_export import (
    APP_INPUTS,
    ASSET_FILES,
    VOCAB_FORMAT,
    build_vocab,
    check_manifest,
    export_android,
)
from edge_albert.bundle import MODEL_FILE, TOKENIZER_FILE, load_bundle, write_bundle
from edge_albert.cli import main
from edge_albert.errors import BundleError
from tests.runtime_bundles import bundle_for

MANIFEST = {"task": "text-classification", "labels": ["negative", "positive"], "max_seq_len": 32, "graph": "loop",
            "quantization": {"mode": "dynamic-int8"}}


@pytest.fixture(scope="module")
def bundle_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("android-export-bundles")


@pytest.fixture(scope="module")
def loop_bundle(bundle_root) -> Path:
    return bundle_for(bundle_root, "text-classification", "dynamic-int8", "loop")


def tokenizer_json(**changes) -> dict:
    """A minimal ALBERT-layout tokenizer.json (the pipeline transformers 5 writes, a toy vocabulary)."""
    data = {
        "added_tokens": [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True}
                         for i, c in enumerate(["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"])],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Replace", "pattern": {"String": "``"}, "content": '"'},
            {"type": "NFKD"}, {"type": "StripAccents"}, {"type": "Lowercase"},
            {"type": "Precompiled", "precompiled_charsmap": "AAAA"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "WhitespaceSplit"},
            {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}]},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 1}},
                                    {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
                           "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                                              "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
        "model": {"type": "Unigram", "unk_id": 1, "byte_fallback": False,
                  "vocab": [["<pad>", 0.0], ["<unk>", 0.0], ["[CLS]", 0.0], ["[SEP]", 0.0], ["[MASK]", 0.0],
                            ["\u2581", -2.0], ["\u2581a", -3.5]]},
    }
    data.update(changes)
    return data


# --------------------------------------------------------------------------- no model needed


def test_vocab_export_keeps_the_pipeline_the_java_core_reads():
    vocab = build_vocab(tokenizer_json(), MANIFEST)
    assert vocab["format"] == VOCAB_FORMAT and vocab["format_version"] == 1
    tokenizer = vocab["tokenizer"]
    assert [s["type"] for s in tokenizer["normalizer"]] == ["Replace", "NFKD", "StripAccents", "Lowercase",
                                                            "Precompiled"]
    assert tokenizer["normalizer"][0] == {"type": "Replace", "pattern": "``", "regex": False, "content": '"'}
    assert tokenizer["pre_tokenizer"][1] == {"type": "Metaspace", "replacement": "\u2581",
                                             "prepend_scheme": "always", "split": True}
    assert tokenizer["model"]["pieces"][6] == ["\u2581a", -3.5] and tokenizer["model"]["fuse_unk"] is True
    assert tokenizer["model"]["types"]["control"] == [0, 2, 3, 4] and tokenizer["model"]["types"]["unknown"] == [1]
    assert vocab["template"]["single"][0] == {"special": "[CLS]", "special_ids": [2], "type_id": 0}
    assert vocab["template"]["pair"][3] == {"sequence": "B", "type_id": 1}
    assert vocab["special_tokens"] == {"pad": 0, "cls": 2, "sep": 3, "mask": 4, "unk": 1}
    assert vocab["pad_id"] == 0 and vocab["max_seq_len"] == 32 and vocab["labels"] == ["negative", "positive"]


@pytest.mark.parametrize("change, message", [
    ({"model": {"type": "BPE", "vocab": {}, "merges": []}}, "Unigram only"),
    ({"normalizer": {"type": "BertNormalizer"}}, "'BertNormalizer' is not implemented"),
    ({"pre_tokenizer": {"type": "ByteLevel"}}, "'ByteLevel' is not implemented"),
    ({"pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True}},
     "prepend_scheme 'first'"),
    ({"post_processor": None}, "TemplateProcessing"),
    ({"added_tokens": [{"id": 5, "content": "(", "normalized": True, "special": False}]}, "normalized=true"),
])
def test_vocab_export_refuses_what_the_java_core_does_not_implement(change, message):
    with pytest.raises(BundleError, match=message.replace("(", r"\(")):
        build_vocab(tokenizer_json(**change), MANIFEST)


@pytest.mark.parametrize("change, message", [
    ({"task": "question-answering"}, "runs text-classification bundles only"),
    ({"labels": []}, "no list of label names"),
    ({"graph": "scan"}, "graph is 'scan'"),
    ({"quantization": {"mode": "int16x8"}}, "int16x8"),
    ({"quantization": {"mode": "int4"}}, "'int4' is not one the app"),
    ({"max_seq_len": 2}, "max_seq_len"),
    ({"early_exit": {"rule": "patience", "default": 2, "input": "exit_patience", "calls_output": "layer_calls"}},
     r"stops early \(patience=2\).*convert without early_exit"),
])
def test_manifest_check_refuses_bundles_the_app_cannot_run(change, message):
    manifest = {**copy.deepcopy(MANIFEST), **change}
    with pytest.raises(BundleError, match=message):
        check_manifest(manifest)
    assert check_manifest(MANIFEST) == "dynamic-int8"


# --------------------------------------------------------------------------- converter bundles


@pytest.mark.slow
def test_export_writes_assets_the_app_reads(loop_bundle, tmp_path):
    from edge_albert.tasks import TextClassifier

    assets = tmp_path / "app" / "src" / "main" / "assets"
    result = export_android(loop_bundle, assets)
    assert sorted(p.name for p in assets.iterdir()) == sorted(ASSET_FILES)
    assert (assets / MODEL_FILE).read_bytes() == (loop_bundle / MODEL_FILE).read_bytes()
    manifest = json.loads((assets / "manifest.json").read_text(encoding="utf-8"))
    android = manifest["android"]
    assert manifest["labels"] == load_bundle(loop_bundle).labels and android == result.android
    assert android["sequence_length"] is None and android["graph"] == "loop"
    for name, record in android["files"].items():
        assert record["bytes"] == (assets / name).stat().st_size
    # The recorded positions are where the interpreter really has each input.
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(assets / MODEL_FILE)).get_input_details()
    for name in APP_INPUTS:
        assert details[android["inputs"][name]]["name"].endswith(f"{name}:0"), (name, details)
    # The examples' logits are the Python runtime's, which the instrumented test compares with the device's.
    examples = json.loads((assets / "examples.json").read_text(encoding="utf-8"))
    texts = [e["text"] for e in examples["examples"]]
    expected = TextClassifier.load(loop_bundle, num_threads=1).logits(texts)
    np.testing.assert_allclose([e["logits"] for e in examples["examples"]], expected, atol=1e-5)
    assert examples["examples"][0]["input_ids"][0] == 2 and examples["examples"][0]["input_ids"][-1] == 3
    assert max(len(e["input_ids"]) for e in examples["examples"]) == 32  # the long example is truncated
    vocab = json.loads((assets / "vocab.json").read_text(encoding="utf-8"))
    assert vocab["max_seq_len"] == 32 and len(vocab["tokenizer"]["model"]["pieces"]) == 30000


@pytest.mark.slow
def test_existing_assets_are_refused_without_overwrite(loop_bundle, tmp_path):
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "fonts.ttf").write_bytes(b"the app's own asset")
    export_android(loop_bundle, assets)  # other assets alone are no reason to refuse
    before = {name: (assets / name).read_bytes() for name in ASSET_FILES}
    (assets / "vocab.json").write_text("edited")
    with pytest.raises(BundleError, match="already holds model.tflite, vocab.json, examples.json, manifest.json; "
                                          "pass overwrite"):
        export_android(loop_bundle, assets)
    assert (assets / "vocab.json").read_text() == "edited"
    result = CliRunner().invoke(main, ["export-android", str(loop_bundle), str(assets)])
    assert result.exit_code == 1 and "error:" in result.output and "--overwrite" in result.output
    result = CliRunner().invoke(main, ["export-android", str(loop_bundle), str(assets), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert "wrote examples.json, manifest.json, model.tflite, vocab.json" in result.output
    assert {name: (assets / name).read_bytes() for name in ASSET_FILES} == before
    assert (assets / "fonts.ttf").read_bytes() == b"the app's own asset"
    assert not [p for p in assets.iterdir() if p.name.startswith(".")], "staging left behind"


@pytest.mark.slow
def test_question_answering_and_corrupt_bundles_are_refused(bundle_root, loop_bundle, tmp_path):
    qa = bundle_for(bundle_root, "question-answering", "fp32", "loop")
    result = CliRunner().invoke(main, ["export-android", str(qa), str(tmp_path / "qa-assets")])
    assert result.exit_code == 1
    assert "task is 'question-answering'; the Android demo runs text-classification bundles only" in result.output
    assert not (tmp_path / "qa-assets").exists()

    corrupt = tmp_path / "corrupt.edgealbert"
    bundle = load_bundle(loop_bundle)
    files = {name: bundle.file(name) for name in bundle.manifest["files"]}
    write_bundle(corrupt, files, {k: v for k, v in bundle.manifest.items() if k != "files"})
    with open(corrupt / MODEL_FILE, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(BundleError, match="does not match its sha256"):
        export_android(corrupt, tmp_path / "corrupt-assets")


@pytest.mark.slow
def test_unrolled_bundle_is_exported_with_its_fixed_length(bundle_root, tmp_path):
    unrolled = bundle_for(bundle_root, "text-classification", "fp32", "unrolled")
    result = export_android(unrolled, tmp_path / "assets")
    assert result.android["sequence_length"] == 32 and result.android["graph"] == "unrolled"


def tiny_model_bundle(tmp_path: Path, loop_bundle: Path, *, dtype="int32", output="logits", logits_dtype="float32",
                      num_logits=2, length=None, manifest_changes=None) -> Path:
    """A bundle around a small TF function with the given input dtype, output name/dtype and shape."""
    import tensorflow as tf

    spec = [tf.TensorSpec([1, length], getattr(tf, dtype), name=name) for name in APP_INPUTS]

    @tf.function(input_signature=spec)
    def serve(input_ids, attention_mask, token_type_ids):
        total = tf.cast(tf.reduce_sum(input_ids + attention_mask + token_type_ids, axis=1, keepdims=True), tf.float32)
        return {output: tf.cast(tf.tile(total, [1, num_logits]), getattr(tf, logits_dtype))}

    module = tf.Module()
    module.serving_default = serve  # gives the .tflite a serving_default signature, as the converter's has
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], module)
    model_bytes = converter.convert()
    bundle = load_bundle(loop_bundle)
    manifest = {k: v for k, v in bundle.manifest.items() if k != "files"}
    manifest.update(manifest_changes or {})
    out = tmp_path / f"tiny-{dtype}-{output}-{logits_dtype}-{num_logits}-{length}.edgealbert"
    write_bundle(out, {MODEL_FILE: model_bytes, TOKENIZER_FILE: bundle.file(TOKENIZER_FILE)}, manifest)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("options, message", [
    ({"dtype": "int64"}, "input 'input_ids' is int64; the app feeds int32"),
    ({"output": "scores"}, "no output 'logits' \\(it has scores\\)"),
    ({"logits_dtype": "int32"}, "logits are int32; the app reads float32"),
    ({"num_logits": 3}, "logits have shape \\[1, 3\\]; the app expects \\[1, 2\\]"),
    ({"length": 16}, "graph 'loop' but the model's inputs have the fixed shape \\[1, 16\\]"),
    ({"length": 16, "manifest_changes": {"graph": "unrolled"}}, "shape \\[1, 16\\] but max_seq_len is 32"),
])
def test_models_the_app_cannot_drive_are_refused(loop_bundle, tmp_path, options, message):
    bundle = tiny_model_bundle(tmp_path, loop_bundle, **options)
    with pytest.raises(BundleError, match=message):
        export_android(bundle, tmp_path / "assets")
    assert not (tmp_path / "assets").exists()
