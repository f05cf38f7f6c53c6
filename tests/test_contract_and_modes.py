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
    assert quantization.MODE_NAMES == ("fp32", "fp16", "dynamic-int8", "int8", "dynamic-int4", "dynamic-int4-block32",
                                       "dynamic-int4-mixed")
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
    with pytest.raises(ValueError, match="choose from fp32, fp16, dynamic-int8, int8, dynamic-int4, dynamic-int4-block32, dynamic-int4-mixed or all"):
        parse_modes(value)


def _added_mode(monkeypatch, **changes):
    """A new row in the table, as a contributor adding a mode would write it (one row)."""
    import dataclasses

    row = dataclasses.replace(MODES["fp32"], name="fp32-strict", abs_tolerance=1e-6, **changes)
    monkeypatch.setitem(MODES, row.name, row)
    return row


def test_a_mode_added_as_one_row_is_parsed_and_validated_by_the_converter(monkeypatch):
    from edge_albert.converters.convert import check_modes_and_graph, parse_quantizations
    from edge_albert.errors import ConversionError

    row = _added_mode(monkeypatch)
    assert [m.name for m in parse_quantizations("fp32-strict, fp32")] == ["fp32-strict", "fp32"]
    assert row in parse_quantizations("all")
    check_modes_and_graph([row], "loop")
    unrolled_only = _added_mode(monkeypatch, graph_forms=("unrolled",))
    with pytest.raises(ConversionError, match="fp32-strict needs graph unrolled"):
        check_modes_and_graph([unrolled_only], "loop")
    with pytest.raises(ConversionError, match="choose from fp32, fp16, dynamic-int8, int8, dynamic-int4, dynamic-int4-block32, dynamic-int4-mixed, fp32-strict or all"):
        parse_quantizations("bf16")


def test_verification_judges_an_added_mode_by_its_row(monkeypatch):
    import numpy as np

    from edge_albert.converters.verify import compare_outputs

    _added_mode(monkeypatch)
    batches = [{"input_ids": np.ones((2, 3), np.int32), "attention_mask": np.ones((2, 3), np.int32),
                "token_type_ids": np.zeros((2, 3), np.int32)}]
    reference = [{"logits": np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)}]
    candidate = [{"logits": reference[0]["logits"] + np.float32(1e-5)}]
    assert compare_outputs("text-classification", MODES["fp32"], batches, reference, candidate).passed
    strict = compare_outputs("text-classification", MODES["fp32-strict"], batches, reference, candidate)
    assert not strict.passed and strict.tolerance == 1e-6 and "fp32-strict tolerance" in strict.message


def test_the_cli_accepts_an_added_mode_and_lists_the_table(monkeypatch):
    from click.testing import CliRunner

    from edge_albert.cli import main
    from edge_albert.converters import convert as convert_module
    from edge_albert.errors import ConversionError

    _added_mode(monkeypatch)

    def stop_with_the_parsed_modes(checkpoint_dir, output, quantize, **options):
        raise ConversionError("parsed " + ",".join(m.name for m in convert_module.parse_quantizations(quantize)))

    monkeypatch.setattr(convert_module, "convert_checkpoint", stop_with_the_parsed_modes)
    result = CliRunner().invoke(main, ["convert", "ckpt", "-o", "out.edgealbert", "--quantize", "fp32-strict"])
    assert result.exit_code == 1 and "parsed fp32-strict" in result.output
    help_text = " ".join(CliRunner().invoke(main, ["convert", "--help"]).output.split())
    for name in quantization.MODE_NAMES:
        assert name in help_text
    assert f"[default: {quantization.DEFAULT_MODE}]" in help_text


def test_the_cli_takes_its_convert_defaults_from_the_library_without_loading_numpy():
    import subprocess
    import sys
    from pathlib import Path

    from edge_albert.cli import convert
    from edge_albert.converters.options import ConvertOptions

    fresh = subprocess.run([sys.executable, "-c", "import edge_albert.cli, sys; print('numpy' in sys.modules)"],
                           capture_output=True, text=True, cwd=str(Path(__file__).resolve().parents[1]), timeout=120)
    assert fresh.returncode == 0 and fresh.stdout.strip() == "False", fresh.stdout + fresh.stderr
    cli_defaults = convert.make_context("convert", ["ckpt", "-o", "out.edgealbert"]).params
    library = ConvertOptions()
    for name in ("graph", "max_seq_len", "calibration_samples", "max_accuracy_drop", "text_column", "text_pair_column",
                 "label_column", "early_exit", "force", "overwrite", "sign_key"):
        assert cli_defaults[name] == getattr(library, name), name
    assert cli_defaults["per_tensor"] is (not library.per_channel_dense)
    assert cli_defaults["quantize"] == quantization.DEFAULT_MODE
