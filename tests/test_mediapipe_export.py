"""export-mediapipe: the probability output, the compiled tokenizer normalizer, refusals, and MediaPipe itself.

MediaPipe runs in its own interpreter (requirements/mediapipe.txt; `make mediapipe-venv` makes
.venv-mediapipe, $EDGE_ALBERT_MEDIAPIPE_PYTHON names another). Tests that need it fail, not skip,
when it is missing: CI installs it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge_albert.bundle import Bundle, load_bundle
from edge_albert.cli import main
from edge_albert.errors import BundleError
from edge_albert.mediapipe_export import client
from edge_albert.mediapipe_export.export import CHECK_TEXTS, check_bundle
from edge_albert.mediapipe_export.graph import with_probability_output
from edge_albert.mediapipe_export.spiece import compile_spiece, token_differences
from edge_albert.runtime import create_interpreter
from tests.project_data import SST2_DEV
from tests.runtime_bundles import bundle_for

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CHECKPOINT = REPO / "examples" / "sst2-albert"


def mediapipe_python() -> str:
    """The MediaPipe interpreter CI made (or the one named in the environment); an error, not a skip, if absent."""
    chosen = os.environ.get(client.PYTHON_ENV) or str(REPO / ".venv-mediapipe" / "bin" / "python")
    assert os.access(chosen, os.X_OK), f"no MediaPipe interpreter at {chosen}: run `make mediapipe-venv`"
    return chosen


@pytest.fixture(scope="module")
def bundle_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mediapipe-bundles")


@pytest.fixture(scope="module")
def unrolled(bundle_root) -> Path:
    return bundle_for(bundle_root, "text-classification", "fp32", "unrolled")


def _run(model_bytes: bytes, path: Path, ids: np.ndarray) -> dict:
    path.write_bytes(model_bytes)
    interpreter = create_interpreter(str(path), 1)
    runner = interpreter.get_signature_runner()
    feeds = {name: np.zeros_like(ids) if "type" in name else (ids if "ids" in name else np.ones_like(ids))
             for name in runner.get_input_details()}
    return runner(**feeds)


def test_probability_output_is_the_softmax_of_the_bundles_logits(unrolled, tmp_path):
    original = (unrolled / "model.tflite").read_bytes()
    ids = np.full((1, 32), 5, dtype=np.int32)
    logits = _run(original, tmp_path / "a.tflite", ids)["logits"]
    probabilities = _run(with_probability_output(original), tmp_path / "b.tflite", ids)["probabilities"]
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    sigmoid = _run(with_probability_output(original, multi_label=True), tmp_path / "c.tflite", ids)["probabilities"]
    np.testing.assert_allclose(sigmoid, 1 / (1 + np.exp(-logits)), atol=1e-6)
    # the weights are the bundle's own: the file grows by one operator and one tensor only
    assert len(with_probability_output(original)) - len(original) < 1024


def test_loop_form_is_refused_by_the_graph_edit(bundle_root):
    loop = bundle_for(bundle_root, "text-classification", "fp32", "loop")
    with pytest.raises(BundleError, match="single-subgraph"):
        with_probability_output((loop / "model.tflite").read_bytes())


@pytest.mark.slow
def test_compiled_spiece_tokenizes_like_tokenizer_json_on_sst2_and_hard_texts():
    tokenizer_json = (EXAMPLE_CHECKPOINT / "tokenizer.json").read_text()
    original = (EXAMPLE_CHECKPOINT / "spiece.model").read_bytes()
    texts = [line.split("\t")[0] for line in SST2_DEV.read_text().splitlines()[1:]] + list(CHECK_TEXTS)
    assert len(texts) > 800
    compiled = compile_spiece(original, tokenizer_json)
    assert token_differences(original, tokenizer_json, texts), "the check would not see a different normalizer"
    assert token_differences(compiled.model, tokenizer_json, texts) == []
    # what a charsmap cannot express is reported, not hidden: special tokens typed in the text
    literal = "[CLS] typed special tokens [SEP]"
    assert token_differences(compiled.model, tokenizer_json, [literal]) == [literal]


def _with_manifest(bundle: Bundle, **changes) -> Bundle:
    return Bundle(path=bundle.path, manifest={**bundle.manifest, **changes})


def test_bundles_mediapipe_cannot_run_are_refused_in_one_line(unrolled):
    bundle = load_bundle(unrolled)
    assert check_bundle(bundle) == bundle.manifest["quantization"]["mode"]
    cases = {
        "question-answering": _with_manifest(bundle, task="question-answering"),
        "token classification": _with_manifest(bundle, task="token-classification"),
        "feature task": _with_manifest(bundle, task="feature-extraction"),
        "stops early": _with_manifest(bundle, early_exit={"rule": "patience", "default": 2}),
        "loop form": _with_manifest(bundle, graph="loop"),
        "no fast CPU kernels": _with_manifest(bundle, quantization={"mode": "int16x8"}),
    }
    for expected, case in cases.items():
        with pytest.raises(BundleError) as error:
            check_bundle(case)
        assert expected in str(error.value) and "\n" not in str(error.value)


def test_cli_refusals_are_one_line_before_any_work(bundle_root, unrolled, tmp_path):
    runner = CliRunner()
    existing = tmp_path / "out.tflite"
    existing.write_bytes(b"keep")
    result = runner.invoke(main, ["export-mediapipe", str(unrolled), str(existing)])
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0
    assert "--overwrite" in result.output and existing.read_bytes() == b"keep"
    qa = bundle_for(bundle_root, "question-answering", "fp32", "loop")
    result = runner.invoke(main, ["export-mediapipe", str(qa), str(tmp_path / "qa.tflite")])
    assert result.exit_code == 1 and "text-classification bundles only" in result.output
    result = runner.invoke(main, ["export-mediapipe", str(unrolled), str(tmp_path / "x.tflite"),
                                  "--mediapipe-python", str(tmp_path / "missing-python")])
    assert result.exit_code == 1 and "--mediapipe-python" in result.output and "make" not in result.output.split(":")[0]
    assert not (tmp_path / "x.tflite").exists() and not (tmp_path / "qa.tflite").exists()


def test_export_agrees_with_the_bundle_and_a_disagreement_is_refused(unrolled, tmp_path, monkeypatch):
    out = tmp_path / "model.tflite"
    result = CliRunner().invoke(main, ["export-mediapipe", str(unrolled), str(out),
                                       "--mediapipe-python", mediapipe_python()])
    assert result.exit_code == 0, result.output
    assert f"{len(CHECK_TEXTS)} labels identical" in result.output
    assert out.stat().st_size > (unrolled / "model.tflite").stat().st_size
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]  # no staging left behind

    from edge_albert.mediapipe_export import export

    monkeypatch.setattr(export, "bundle_probabilities", lambda *a, **k: np.tile([[1.0, 0.0]], (len(CHECK_TEXTS), 1)))
    again = CliRunner().invoke(main, ["export-mediapipe", str(unrolled), str(tmp_path / "bad.tflite"),
                                      "--mediapipe-python", mediapipe_python()])
    assert again.exit_code == 1 and "disagrees" in again.output and "nothing written" in again.output
    assert not (tmp_path / "bad.tflite").exists()
    forced = CliRunner().invoke(main, ["export-mediapipe", str(unrolled), str(tmp_path / "bad.tflite"), "--force",
                                       "--mediapipe-python", mediapipe_python()])
    assert forced.exit_code == 0 and "written anyway" in forced.output and (tmp_path / "bad.tflite").exists()
