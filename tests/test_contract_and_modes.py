"""The task contract and the quantization table: the one place each idea is defined."""

import pytest

from edge_albert import contract, quantization
from edge_albert.quantization import MODES, Parity, parse_modes, quantization_mode


def test_every_task_has_outputs_split_into_per_token_and_per_sequence():
    for task, spec in contract.TASKS.items():
        assert spec.output_names, task
        assert set(spec.per_token_outputs) | set(spec.per_sequence_outputs) == set(spec.output_names)
        assert not set(spec.per_token_outputs) & set(spec.per_sequence_outputs)
    assert contract.task_contract("question-answering").per_token_outputs == ("start_logits", "end_logits")
    assert contract.task_contract("feature-extraction").per_sequence_outputs == ("pooler_output",)
    assert contract.TASK_BY_ARCHITECTURE["AlbertForSequenceClassification"] == "text-classification"


def test_unknown_task_names_the_known_ones():
    with pytest.raises(KeyError, match="text-classification"):
        contract.task_contract("summarization")


def test_modes_table_rows():
    assert quantization.MODE_NAMES == ("fp32", "fp16", "dynamic-int8", "int8")
    assert [m.name for m in parse_modes("all")] == ["fp32", "fp16", "dynamic-int8"]
    assert [m.name for m in parse_modes("int8, fp32,int8")] == ["int8", "fp32"]
    assert quantization_mode("int8").needs_calibration and quantization_mode("int8").graph_forms == ("unrolled",)
    assert quantization_mode("int8").mask_bias == quantization.INT8_MASK_BIAS
    assert all(m.mask_bias == quantization.FLOAT_MASK_BIAS for m in MODES.values() if m.name != "int8")
    for mode in MODES.values():
        assert (mode.abs_tolerance is not None) == (mode.parity is Parity.MAX_ABS_DIFF), mode.name
        assert quantization.LITERT in mode.runtimes()


def test_device_tolerance_follows_the_parity_rule():
    assert quantization_mode("fp32").device_tolerance(3e-7) == 1e-4
    assert quantization_mode("dynamic-int8").device_tolerance(0.05) == pytest.approx(0.2)
    assert quantization_mode("dynamic-int8").device_tolerance(1e-6) == quantization.QUANTIZED_TOLERANCE_FLOOR


def test_per_tensor_widens_the_runtimes_only_where_the_table_says():
    assert quantization.TFLITE_RUNTIME not in quantization_mode("dynamic-int8").runtimes()
    assert quantization.TFLITE_RUNTIME in quantization_mode("dynamic-int8").runtimes(per_tensor=True)
    assert quantization.TFLITE_RUNTIME not in quantization_mode("int8").runtimes(per_tensor=True)


@pytest.mark.parametrize("value", ["", " , ", "int4", "fp32,bf16"])
def test_bad_mode_lists_are_refused_with_the_valid_names(value):
    with pytest.raises(ValueError, match="choose from fp32, fp16, dynamic-int8, int8 or all"):
        parse_modes(value)
