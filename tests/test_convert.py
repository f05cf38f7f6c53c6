"""The convert pipeline on tiny random checkpoints: every task, every variant, both graph forms."""

import dataclasses
import json

import numpy as np
import pytest
from tests.checkpoints import make_albert_checkpoint

from edge_albert.bundle import load_bundle
from edge_albert.converters import tflite as tflite_module
from edge_albert.converters import verify as verify_module
from edge_albert.hf.checkpoint import load_checkpoint
from edge_albert.converters.convert import convert_checkpoint
from edge_albert.converters.samples import BUILT_IN_TEXTS
from edge_albert.errors import ConversionError, VerificationError
from edge_albert.quantization import MODES, quantization_mode


def _operators(bundle):
    return bundle.manifest["inspection"]["operators"]


def _shared_layer_parameters(checkpoint):
    return sum(v.size for k, v in checkpoint.weights.items() if k.startswith("encoder.albert_layer_groups"))


@pytest.fixture(scope="module")
def classifier_bundles(tiny_classifier_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles") / "tiny.edgealbert"
    return convert_checkpoint(tiny_classifier_checkpoint, out, quantize="fp32,fp16,dynamic-int8")


def test_every_variant_is_verified_and_bundled(classifier_bundles):
    by_variant = {v.quantize: v for v in classifier_bundles.variants}
    assert set(by_variant) == {"fp32", "fp16", "dynamic-int8"}
    assert by_variant["fp32"].check.max_abs_diff <= 1e-4
    assert by_variant["fp16"].check.max_abs_diff <= 5e-3
    assert by_variant["dynamic-int8"].check.label_agreement >= 0.99
    for variant in by_variant.values():
        bundle = load_bundle(variant.bundle_path)  # verifies every sha256
        assert bundle.manifest["quantization"]["mode"] == variant.quantize
        assert bundle.manifest["validation"]["passed"] is True
        assert bundle.manifest["labels"] == ["negative", "positive"]
        assert set(bundle.manifest["files"]) == {"model.tflite", "tokenizer.json", "spiece.model"}
        assert variant.bundle_path.name == f"tiny-{variant.quantize}.edgealbert"


def test_file_sizes_track_the_precision(classifier_bundles, tiny_classifier_checkpoint):
    sizes = {v.quantize: v.inspection.file_bytes for v in classifier_bundles.variants}
    parameters = load_checkpoint(tiny_classifier_checkpoint).parameter_count()
    assert sizes["fp32"] <= 1.03 * 4 * parameters + tflite_module.STRUCTURE_SLACK_BYTES
    assert 0.45 < sizes["fp16"] / sizes["fp32"] < 0.55
    assert 0.22 < sizes["dynamic-int8"] / sizes["fp32"] < 0.30


def test_loop_fp16_dequantizes_the_shared_weights_inside_the_while(classifier_bundles):
    """XNNPACK packs fp16 weights only where their DEQUANTIZE sits in the subgraph it runs: the WHILE body.

    Weights captured from the main graph were dequantized there and handed to the WHILE as float32
    operands, which made loop fp16 about 4x slower than fp32 on CPU (benchmarks/README.md).
    """
    schema = tflite_module._schema()
    fp16 = next(v for v in classifier_bundles.variants if v.quantize == "fp16")
    model = schema.ModelT.InitFromPackedBuf(bytearray(fp16.bundle.model_path.read_bytes()), 0)
    dequantize = schema.BuiltinOperator.DEQUANTIZE
    main, body_dequantizes = model.subgraphs[0], 0
    for subgraph in model.subgraphs[1:]:
        body_dequantizes += sum(model.operatorCodes[op.opcodeIndex].builtinCode == dequantize for op in subgraph.operators)
    producers = {out: op for op in main.operators for out in op.outputs}
    [loop] = [op for op in main.operators if model.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.WHILE]
    for operand in loop.inputs:
        op = producers.get(operand)
        if op is not None and model.operatorCodes[op.opcodeIndex].builtinCode == dequantize:
            weight = model.buffers[main.tensors[op.inputs[0]].buffer].data
            assert weight is None or len(weight) < tflite_module.MIN_WEIGHT_BYTES
    assert body_dequantizes >= 6  # at least the shared layer's six matrices (vectors this small stay float32)
    assert fp16.bundle.manifest["quantization"]["note"] is None


def test_loop_form_runs_the_shared_layer_in_one_while(classifier_bundles, tiny_classifier_checkpoint):
    bundle = classifier_bundles.variants[0].bundle
    assert _operators(bundle)["WHILE"] == 1
    assert bundle.manifest["inspection"]["subgraphs"] == 3  # main, while_cond, while_body
    assert bundle.manifest["inputs"][0]["shape"] == [-1, -1]
    parts = bundle.manifest["inspection"]["bytes_by_part"]
    shared_bytes = 4 * _shared_layer_parameters(load_checkpoint(tiny_classifier_checkpoint))
    # one copy of the shared layer (small biases count as structure), never num_hidden_layers copies
    assert 0.9 * shared_bytes <= parts["shared_layer"] <= 1.01 * shared_bytes


def test_loop_form_takes_any_length_and_batch(classifier_bundles, tiny_classifier_checkpoint):
    checkpoint = load_checkpoint(tiny_classifier_checkpoint)
    model_bytes = classifier_bundles.variants[0].bundle.model_path.read_bytes()
    rng = np.random.RandomState(1)
    batches = []
    for batch, length in [(1, 1), (1, 7), (3, 20), (2, 64)]:
        ids = rng.randint(5, 30000, size=(batch, length)).astype(np.int32)
        mask = np.ones_like(ids)
        mask[0, length // 2 + 1 :] = 0  # padding in the first row
        batches.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
    reference = verify_module.reference_outputs(checkpoint, batches)
    check = verify_module.verify_variant(checkpoint, model_bytes, quantization_mode("fp32"), batches, reference)
    assert check.passed, check.message
    assert check.max_abs_diff <= 1e-4


def test_unrolled_form_stores_the_shared_layer_once(tiny_classifier_checkpoint, tmp_path):
    result = convert_checkpoint(tiny_classifier_checkpoint, tmp_path / "u.edgealbert", quantize="fp32", graph="unrolled", max_seq_len=16)
    bundle = result.bundle
    assert "WHILE" not in _operators(bundle)
    assert bundle.manifest["inputs"][0]["shape"] == [1, 16]
    assert _operators(bundle)["FULLY_CONNECTED"] >= 6 * 3  # six dense layers per call, three calls
    shared_bytes = 4 * _shared_layer_parameters(load_checkpoint(tiny_classifier_checkpoint))
    assert bundle.manifest["inspection"]["bytes_by_part"]["shared_layer"] <= 1.01 * shared_bytes
    assert result.variants[0].check.max_abs_diff <= 1e-4


@pytest.mark.parametrize("task", ["question-answering", "token-classification", "feature-extraction"])
def test_other_tasks_match_pytorch(task, tmp_path):
    checkpoint_dir = make_albert_checkpoint(tmp_path / "ckpt", task=task, seed=3)
    result = convert_checkpoint(checkpoint_dir, tmp_path / "out.edgealbert", quantize="fp32,dynamic-int8", force=True)
    fp32, int8 = result.variants
    assert fp32.check.passed and fp32.check.max_abs_diff <= 1e-4, fp32.check.message
    assert int8.check.max_abs_diff < 0.1  # reported honestly; the gate is label agreement
    names = [o["name"] for o in fp32.bundle.manifest["outputs"]]
    expected = {"question-answering": ["start_logits", "end_logits"], "token-classification": ["logits"],
                "feature-extraction": ["last_hidden_state", "pooler_output"]}[task]
    assert names == expected


def test_full_int8_needs_unrolled_form_and_calibration(tiny_classifier_checkpoint, tmp_path):
    with pytest.raises(ConversionError, match="graph unrolled"):
        convert_checkpoint(tiny_classifier_checkpoint, tmp_path / "a.edgealbert", quantize="int8")
    with pytest.raises(ConversionError, match="calibration"):
        convert_checkpoint(tiny_classifier_checkpoint, tmp_path / "b.edgealbert", quantize="int8", graph="unrolled")
    assert not any(tmp_path.iterdir())


def test_full_int8_with_calibration(tiny_classifier_checkpoint, tmp_path):
    result = convert_checkpoint(
        tiny_classifier_checkpoint, tmp_path / "i8.edgealbert", quantize="int8", graph="unrolled",
        max_seq_len=32, calibration_texts=BUILT_IN_TEXTS * 2, force=True,
    )
    variant = result.variants[0]
    assert variant.bundled
    manifest = variant.bundle.manifest
    assert manifest["quantization"]["attention_mask_bias"] == -20.0
    assert manifest["validation"]["max_abs_diff"] < 0.05
    assert variant.inspection.file_bytes < 0.3 * 4 * load_checkpoint(tiny_classifier_checkpoint).parameter_count()


def test_per_tensor_dense_quantization_is_recorded(tiny_classifier_checkpoint, tmp_path):
    result = convert_checkpoint(tiny_classifier_checkpoint, tmp_path / "pt.edgealbert", per_channel_dense=False)
    quantization = result.bundle.manifest["quantization"]
    assert quantization["per_channel_dense"] is False
    assert "tflite-runtime" in quantization["min_runtime"]


def test_a_failing_variant_is_not_bundled(tiny_classifier_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setitem(MODES, "fp32", dataclasses.replace(MODES["fp32"], abs_tolerance=0.0))
    monkeypatch.setattr(verify_module, "MIN_LABEL_AGREEMENT", 1.01)
    with pytest.raises(VerificationError, match="exceeds the fp32 tolerance"):
        convert_checkpoint(tiny_classifier_checkpoint, tmp_path / "f.edgealbert", quantize="fp32")
    assert not any(tmp_path.iterdir())
    result = convert_checkpoint(tiny_classifier_checkpoint, tmp_path / "f.edgealbert", quantize="fp32", force=True)
    assert result.bundle.manifest["validation"]["forced"] is True
    assert result.bundle.manifest["validation"]["passed"] is False


def test_output_that_exists_is_refused_before_any_work(classifier_bundles, tiny_classifier_checkpoint):
    existing = classifier_bundles.variants[0].bundle_path
    before = (existing / "manifest.json").read_text()
    with pytest.raises(ConversionError, match="already exists"):
        convert_checkpoint(tiny_classifier_checkpoint, existing, quantize="fp32")
    assert (existing / "manifest.json").read_text() == before


def test_max_seq_len_is_checked(tiny_classifier_checkpoint, tmp_path):
    with pytest.raises(ConversionError, match="between 1 and 64"):
        convert_checkpoint(tiny_classifier_checkpoint, tmp_path / "x.edgealbert", max_seq_len=65)


def _with_duplicated_weight_buffer(model_bytes: bytes) -> tuple:
    """Give one weight tensor its own byte-identical copy of its buffer, as a naive exporter would."""
    import copy

    import flatbuffers

    schema = tflite_module._schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    largest = max(
        (t for t in model.subgraphs[0].tensors if model.buffers[t.buffer].data is not None),
        key=lambda t: len(model.buffers[t.buffer].data),
    )
    original_buffer = largest.buffer
    model.buffers.append(copy.deepcopy(model.buffers[original_buffer]))
    largest.buffer = len(model.buffers) - 1
    # a second tensor reading the original buffer keeps both copies alive
    twin = copy.deepcopy(largest)
    twin.buffer = original_buffer
    model.subgraphs[0].tensors.append(twin)
    builder = flatbuffers.Builder(len(model_bytes) * 2)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), len(model.buffers[-1].data)


def test_duplicate_buffers_are_merged_and_outputs_unchanged(classifier_bundles, tiny_classifier_checkpoint):
    original = classifier_bundles.variants[0].bundle.model_path.read_bytes()
    duplicated, copy_bytes = _with_duplicated_weight_buffer(original)
    assert len(duplicated) >= len(original) + copy_bytes
    merged, count, saved = tflite_module.merge_duplicate_buffers(duplicated)
    assert count == 1 and saved == copy_bytes
    assert len(merged) <= len(original) + 1024
    checkpoint = load_checkpoint(tiny_classifier_checkpoint)
    _, inspection = tflite_module.compact_and_check(duplicated, checkpoint, quantization_mode("fp32"))
    assert inspection.duplicate_buffers_merged == 1
    batch = verify_module.encode_samples(checkpoint, BUILT_IN_TEXTS[:2], [None, None], 64)
    outputs = [verify_module.tflite_outputs(m, batch, ["logits"])[0]["logits"] for m in (original, merged)]
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_size_gate_refuses_a_file_far_above_the_ideal(tiny_classifier_checkpoint, classifier_bundles, monkeypatch):
    checkpoint = load_checkpoint(tiny_classifier_checkpoint)
    model_bytes = classifier_bundles.variants[0].bundle.model_path.read_bytes()
    monkeypatch.setattr(tflite_module, "ideal_bytes", lambda c, q: len(model_bytes) // 2)
    with pytest.raises(ConversionError, match="stored more than once"):
        tflite_module.compact_and_check(model_bytes, checkpoint, quantization_mode("fp32"))


def test_cli_convert_prints_the_report_and_inspect_shows_the_breakdown(tiny_classifier_checkpoint, tmp_path):
    from click.testing import CliRunner

    from edge_albert.cli import main

    out = tmp_path / "cli.edgealbert"
    result = CliRunner().invoke(main, ["convert", str(tiny_classifier_checkpoint), "-o", str(out), "--quantize", "fp16"])
    assert result.exit_code == 0, result.output
    assert "fp16" in result.output and "pass" in result.output
    inspect = CliRunner().invoke(main, ["inspect", str(out)])
    assert inspect.exit_code == 0, inspect.output
    assert "shared_layer" in inspect.output and "embeddings" in inspect.output
    as_json = CliRunner().invoke(main, ["inspect", str(out), "--json"])
    assert json.loads(as_json.output)["quantization"]["mode"] == "fp16"


def test_cli_convert_signs_each_bundle_with_the_options_it_built(tiny_classifier_checkpoint, tmp_path):
    from click.testing import CliRunner

    from edge_albert.cli import main
    from edge_albert.bundle import verify_bundle_signature
    from edge_albert.signing import generate_key_pair

    private, public = generate_key_pair(tmp_path / "key")
    out = tmp_path / "signed.edgealbert"
    result = CliRunner().invoke(main, ["convert", str(tiny_classifier_checkpoint), "-o", str(out), "--quantize", "fp32",
                                       "--graph", "unrolled", "--max-seq-len", "12", "--sign-key", str(private)])
    assert result.exit_code == 0, result.output
    assert f"signed {out / 'manifest.sig'}" in result.output
    verify_bundle_signature(out, public)  # raises when unsigned or signed by another key
    manifest = load_bundle(out).manifest
    assert (manifest["graph"], manifest["max_seq_len"]) == ("unrolled", 12)


def test_a_bad_sign_key_is_one_line_before_any_work_and_keeps_the_signed_bundle(tiny_classifier_checkpoint, tmp_path,
                                                                               monkeypatch):
    """Missing, empty, garbage, public or non-Ed25519 key: refused before the checkpoint is read; an existing
    signed bundle stays as it was under --overwrite, and nothing else is written."""
    from click.testing import CliRunner
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from edge_albert.bundle import write_bundle
    from edge_albert.cli import main
    from edge_albert.converters import convert as convert_module
    from edge_albert.bundle import sign_bundle, verify_bundle_signature
    from edge_albert.signing import generate_key_pair

    private, public = generate_key_pair(tmp_path / "keys" / "key")
    out = tmp_path / "signed.edgealbert"
    write_bundle(out, {"model.tflite": b"old model", "tokenizer.json": b"{}"},
                 {"task": "text-classification", "max_seq_len": 8})
    sign_bundle(out, private)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def no_work(*args, **kwargs):
        raise AssertionError("conversion work started")

    monkeypatch.setattr(convert_module, "load_checkpoint", no_work)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "garbage").write_bytes(b"\x00\xffnot a key")
    (tmp_path / "ec.pem").write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cases = {tmp_path / "missing": "cannot read the private key", tmp_path / "empty": "is not a PEM private key",
             tmp_path / "garbage": "is not a PEM private key", public: "did you pass the .pub file?",
             tmp_path / "ec.pem": "edge-albert signs with Ed25519 keys"}
    for key, message in cases.items():
        for target, extra in ((out, ["--overwrite"]), (tmp_path / "new.edgealbert", [])):
            result = CliRunner().invoke(main, ["convert", str(tiny_classifier_checkpoint), "-o", str(target),
                                               "--sign-key", str(key), *extra])
            assert result.exit_code == 1 and "Traceback" not in result.output, result.output
            errors = [line for line in result.output.splitlines() if line.startswith("error:")]
            assert len(errors) == 1 and message in errors[0], result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    verify_bundle_signature(out, public)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["keys", "signed.edgealbert", "empty", "garbage", "ec.pem"])


def test_settings_override_the_options_and_are_checked_before_any_work(tiny_classifier_checkpoint, tmp_path,
                                                                       monkeypatch):
    from edge_albert.converters import convert as convert_module
    from edge_albert.converters.options import ConvertOptions

    def no_work(*args, **kwargs):
        raise AssertionError("conversion work started")

    monkeypatch.setattr(convert_module, "load_checkpoint", no_work)
    options = ConvertOptions(graph="unrolled", samples=["a", "b"])
    assert options.samples == ("a", "b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.graph = "loop"
    with pytest.raises(ConversionError) as refused:
        convert_checkpoint(tiny_classifier_checkpoint, tmp_path / "o.edgealbert", "fp32", options=options, graph="{odd}")
    assert str(refused.value) == "graph must be loop or unrolled, not '{odd}'"  # the library names the parameter
    assert refused.value.spelled(lambda name: f"--{name}") == "--graph must be loop or unrolled, not '{odd}'"
    with pytest.raises(ConversionError, match="^early_exit needs graph loop"):
        convert_checkpoint(tiny_classifier_checkpoint, tmp_path / "o.edgealbert", options=options, early_exit="patience=1")
    with pytest.raises(TypeError, match="grahp"):
        convert_checkpoint(tiny_classifier_checkpoint, tmp_path / "o.edgealbert", grahp="loop")
    assert options.graph == "unrolled" and not any(tmp_path.iterdir())


EXAMPLE = __import__("pathlib").Path(__file__).resolve().parents[1] / "examples" / "sst2-albert"


@pytest.mark.slow
@pytest.mark.parametrize("quantize", ["fp32", "int8"])
def test_unrolled_example_stores_each_shared_weight_once(quantize, tmp_path):
    """Every call of the unrolled layer reads the same weight buffers (no per-call folded copies)."""
    result = convert_checkpoint(
        EXAMPLE, tmp_path / "u.edgealbert", quantize=quantize, graph="unrolled", max_seq_len=64,
        calibration_texts=BUILT_IN_TEXTS * 3, force=True,
    )
    variant = result.variants[0]
    checkpoint = load_checkpoint(EXAMPLE)
    schema = tflite_module._schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(variant.bundle.model_path.read_bytes()), 0)
    hidden = checkpoint.config.hidden_size
    square = {
        t.buffer for t in model.subgraphs[0].tensors
        if list(t.shape) == [hidden, hidden] and model.buffers[t.buffer].data is not None
    }
    assert len(square) == 5  # query, key, value, attention output, pooler: once each
    assert variant.inspection.size_ratio <= tflite_module.SIZE_TOLERANCE
