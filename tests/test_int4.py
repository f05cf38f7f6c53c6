"""int4 modes through AI Edge Quantizer (issue 21): verified bundles, shared layer once, manifest, inspect, refusals."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from tests.checkpoints import TINY_SHAPE, make_albert_checkpoint

from edge_albert.cli import main
from edge_albert.converters.convert import ConvertOptions, convert_checkpoint, variant_modes
from edge_albert.converters.weight_quantizer import quantizer_recipe
from edge_albert.errors import BundleError, RuntimeBackendError
from edge_albert.quantization import LITERT, MODES, TFLITE_RUNTIME
from edge_albert.runtime import Backend, runtime_refusal

# E and the FFN width divisible by 32, so blockwise applies to the large matrices; E=16 tables fall back.
SHAPE = {**TINY_SHAPE, "embedding_size": 32, "intermediate_size": 64, "initializer_range": 0.2}
INT4_MODES = ("dynamic-int4", "dynamic-int4-block32", "dynamic-int4-mixed")


@pytest.fixture(scope="module")
def int4_checkpoint(tmp_path_factory):
    return make_albert_checkpoint(tmp_path_factory.mktemp("int4") / "ckpt", shape=SHAPE, seed=5)


@pytest.fixture(scope="module")
def int4_loop(int4_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("int4-loop") / "m.edgealbert"
    return {v.quantize: v for v in convert_checkpoint(int4_checkpoint, out, quantize=",".join(INT4_MODES)).variants}


def test_int4_modes_write_verified_bundles_with_the_shared_layer_once(int4_loop):
    assert set(int4_loop) == set(INT4_MODES)
    for name, variant in int4_loop.items():
        assert variant.bundled and variant.check.passed, (name, variant.failure)
        inspection = variant.inspection
        # compact_and_check's size gate (1.03x the int4 ideal) passed: no weight stored twice
        assert inspection.size_ratio <= 1.03 + 96 * 1024 / inspection.ideal_bytes
        assert inspection.subgraphs >= 2 and inspection.operators.get("WHILE") == 1
        assert "EMBEDDING_LOOKUP" in inspection.operators
        assert "int4" in inspection.precision_by_part["shared_layer"], inspection.precision_by_part


def test_int4_manifest_records_the_mode_and_its_runtime(int4_loop):
    for name, variant in int4_loop.items():
        quantization = variant.bundle.manifest["quantization"]
        assert quantization["mode"] == name
        assert quantization["min_runtime"] == {LITERT: "2.3"}
        assert quantization["per_channel_dense"] is None
        assert variant.bundle.manifest["validation"]["label_agreement"] >= 0.99


def test_int4_precisions_per_weight_group(int4_loop):
    precisions = {name: v.inspection.precision_by_part for name, v in int4_loop.items()}
    assert precisions["dynamic-int4"]["shared_layer"] == "int4 per channel"
    assert precisions["dynamic-int4-block32"]["shared_layer"] == "int4 block 32"
    assert precisions["dynamic-int4-mixed"]["shared_layer"] == "int4 per channel, int8 per channel"
    assert "int4 per channel" in precisions["dynamic-int4"]["embeddings"]
    smaller = int4_loop["dynamic-int4"].inspection.file_bytes
    assert smaller < int4_loop["dynamic-int4-mixed"].inspection.file_bytes


def test_inspect_shows_the_precision_per_weight_group(int4_loop):
    result = CliRunner().invoke(main, ["inspect", str(int4_loop["dynamic-int4-block32"].bundle_path)])
    assert result.exit_code == 0, result.output
    assert "matrices stored as" in result.output and "int4 block 32" in result.output
    assert "ai-edge-litert >= 2.3" in result.output


@pytest.mark.slow
def test_unrolled_int4_bundle_agrees_with_the_loop(int4_checkpoint, int4_loop, tmp_path):
    from edge_albert.tasks import TextClassifier

    result = convert_checkpoint(int4_checkpoint, tmp_path / "u.edgealbert", quantize="dynamic-int4", graph="unrolled",
                                max_seq_len=32)
    variant = result.variants[0]
    assert variant.bundled and "int4" in variant.inspection.precision_by_part["shared_layer"]
    texts = ["a fine film", "dull and long", "I would not recommend this to anyone."]
    loop = TextClassifier.load(int4_loop["dynamic-int4"].bundle_path).logits(texts)
    # int4 activations are quantized per call on the fly: the fixed-length padding of the unrolled form
    # shifts logits by up to ~0.2 on this random model, so the forms agree on labels, not to 1e-4
    unrolled = TextClassifier.load(variant.bundle_path).logits(texts)
    assert (unrolled.argmax(-1) == loop.argmax(-1)).all() and np.abs(unrolled - loop).max() < 0.5


def test_tflite_runtime_is_refused_in_one_line(int4_loop, monkeypatch):
    from edge_albert import runtime
    from edge_albert.tasks import TextClassifier

    min_runtime = int4_loop["dynamic-int4"].bundle.manifest["quantization"]["min_runtime"]
    pi = Backend("tflite_runtime", "2.14.0", object)
    assert "needs ai-edge-litert >= 2.3" in runtime_refusal(pi, min_runtime)
    assert runtime_refusal(Backend("ai_edge_litert", "2.3.0", object), min_runtime) is None
    assert runtime_refusal(Backend("ai_edge_litert", "2.2.0", object), min_runtime) is not None
    assert runtime_refusal(pi, MODES["fp32"].runtimes()) is None
    monkeypatch.setattr(runtime, "find_backend", lambda backend=None: pi)
    with pytest.raises(RuntimeBackendError, match="tflite_runtime cannot run .*needs ai-edge-litert >= 2.3") as error:
        TextClassifier.load(int4_loop["dynamic-int4"].bundle_path)
    assert "\n" not in str(error.value)


def test_android_export_refuses_int4(int4_loop, tmp_path):
    from edge_albert.android_export import export_android

    with pytest.raises(BundleError, match="dynamic-int4.* is not one the app's LiteRT runtime runs"):
        export_android(int4_loop["dynamic-int4"].bundle_path, tmp_path / "app")


def test_mode_objects_carry_the_recipe():
    options = ConvertOptions(per_channel_dense=False, calibration_samples=7)
    fp32, int8, int4 = variant_modes("fp32,int8,dynamic-int4", options)
    assert not fp32.per_channel_dense and fp32.calibration_samples is None
    assert int8.calibration_samples == 7 and int4.quantizer == MODES["dynamic-int4"].quantizer
    assert TFLITE_RUNTIME not in int4.runtimes()


def test_blockwise_falls_back_to_per_channel_where_the_block_does_not_divide():
    weights = {"embeddings.word_embeddings.weight": np.zeros((3000, 16), np.float32),
               "pooler.weight": np.zeros((64, 64), np.float32)}
    recipe = quantizer_recipe(MODES["dynamic-int4-block32"], weights)
    overrides = [entry for entry in recipe if entry["regex"] != ".*"]
    assert [e["op_config"]["weight_tensor_config"]["granularity"] for e in overrides] == ["CHANNELWISE"]
    assert "word_embeddings" in overrides[0]["regex"] and overrides[0]["operation"] == "EMBEDDING_LOOKUP"
    assert json.dumps(recipe)  # the quantizer takes it as JSON
