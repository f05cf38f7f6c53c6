"""Per-input early exit: the rule, the PyTorch reference, the loop graph's WHILE, runtime reporting, bad input.

Tiny random checkpoints whose classifier head is sharpened (so entropies and labels differ
between inputs and calls, and an entropy threshold splits the inputs across several exit calls);
the trained example (slow) for accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.checkpoints import make_albert_checkpoint
from click.testing import CliRunner

from edge_albert.cli import main
from edge_albert.early_exit import ExitRule, call_distribution, entropy, exit_call, parse_rule, simulate
from edge_albert.errors import EdgeAlbertError

EXAMPLE_EARLY_EXIT = Path(__file__).resolve().parents[1] / "examples" / "sst2-albert-early-exit"

# Inputs of varied length and content. On the sharpened tiny model their entropies fall from about
# 0.51 (call 1) to 0.49 (call 3), so thresholds near 0.5 split them across exit calls.
TEXTS = [
    "a gorgeous, witty, seductive movie.",
    "the plot is thin and the acting is worse",
    "ok",
    "It's not the best film I've seen this year, but the last hour is genuinely moving.",
    "HELLO, my dog is cute",
    "numbers like 1,000,000 and 3.14 appear in reviews",
    "an utterly forgettable, overlong, self-indulgent mess that wastes a talented cast",
    "tabs\tand quotes ``like these''",
    "the",
    "a quiet, patient film about grief, memory and the sea",
    "bad bad bad bad",
    "I laughed, I cried, I checked my watch.",
]


# --------------------------------------------------------------------------- the rule itself


def test_patience_counts_unchanged_labels_and_entropy_a_threshold():
    # labels per call 0, 1, 1, 1 (row 0) and 1, 1, 1, 1 (row 1)
    logits = np.array([[[2.0, 0.0], [0.0, 1.0]],
                       [[0.0, 1.0], [0.0, 2.0]],
                       [[0.0, 3.0], [0.0, 3.0]],
                       [[0.0, 4.0], [0.0, 4.0]]])
    assert [exit_call(logits[:, 0], ExitRule("patience", p)) for p in range(5)] == [1, 3, 4, 4, 4]
    assert [exit_call(logits[:, 1], ExitRule("patience", p)) for p in range(5)] == [1, 2, 3, 4, 4]
    chosen, calls = simulate(logits, ExitRule("patience", 1))
    assert calls.tolist() == [3, 2]
    np.testing.assert_array_equal(chosen, [logits[2, 0], logits[1, 1]])
    # entropies in nats: [2, 0] and [0, 2] 0.365, [0, 1] 0.582, [0, 3] 0.191, [0, 4] 0.090
    assert entropy(np.array([0.0, 0.0])) == pytest.approx(np.log(2))
    assert entropy(np.array([2.0, 0.0])) == pytest.approx(0.3653, abs=1e-4)
    assert exit_call(logits[:, 0], ExitRule("entropy", 0.4)) == 1
    assert exit_call(logits[:, 1], ExitRule("entropy", 0.4)) == 2
    assert exit_call(logits[:, 1], ExitRule("entropy", 0.2)) == 3
    assert exit_call(logits[:, 1], ExitRule("entropy", 0.0)) == 4  # never fires: runs to the last call
    assert call_distribution([1, 3, 3, 4], 4) == {"mean_calls": 2.75, "max_calls": 4,
                                                  "exits_per_call": {"1": 1, "2": 0, "3": 2, "4": 1}}


@pytest.mark.parametrize("text", ["patience=-1", "patience=1.5", "speed=3", "patience=x", "patience", "entropy=nan"])
def test_bad_rules_are_refused(text):
    with pytest.raises(EdgeAlbertError):
        parse_rule(text)


def test_parse_rule():
    assert parse_rule("patience=2") == ExitRule("patience", 2.0)
    assert parse_rule(" Entropy=0.25") == ExitRule("entropy", 0.25)
    assert parse_rule("patience=2").as_text() == "patience=2"


# --------------------------------------------------------------------------- PyTorch reference


@pytest.fixture(scope="module")
def sharp_checkpoint(tmp_path_factory):
    import torch

    from edge_albert.hf.reference import load_reference_model

    path = make_albert_checkpoint(tmp_path_factory.mktemp("sharp") / "ckpt", seed=1)
    model = load_reference_model(path)
    with torch.no_grad():  # random heads give near-uniform logits; sharpen them so exits differ
        model.classifier.weight.mul_(40.0)
        model.albert.pooler.weight.mul_(5.0)
    model.save_pretrained(str(path))
    return path


def _encode(checkpoint_dir, texts):
    from edge_albert.tokenizer import AlbertTokenizer

    tokenizer = AlbertTokenizer.from_file(checkpoint_dir / "tokenizer.json", pad_id=0)
    return tokenizer.encode(list(texts), max_length=64, truncation="longest_first")


def test_per_call_logits_end_with_the_models_own_logits(sharp_checkpoint):
    import torch

    from edge_albert.hf.early_exit import per_call_logits
    from edge_albert.hf.reference import load_reference_model

    model = load_reference_model(sharp_checkpoint)
    enc = _encode(sharp_checkpoint, TEXTS)
    inputs = {name: torch.as_tensor(getattr(enc, name), dtype=torch.long)
              for name in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        per_call = per_call_logits(model, **inputs)
        full = model(**inputs).logits
    assert per_call.shape == (3, len(TEXTS), 2)
    torch.testing.assert_close(per_call[-1], full, rtol=0, atol=1e-5)
    assert not torch.allclose(per_call[0], per_call[-1])  # earlier calls really are earlier


def test_multi_depth_loss_weights_depth_and_reaches_every_call(sharp_checkpoint):
    import torch

    from edge_albert.hf.early_exit import depth_weights, multi_depth_loss, per_call_logits
    from edge_albert.hf.reference import load_reference_model

    assert depth_weights(4) == pytest.approx([0.1, 0.2, 0.3, 0.4])
    model = load_reference_model(sharp_checkpoint)
    enc = _encode(sharp_checkpoint, TEXTS[:4])
    inputs = {name: torch.as_tensor(getattr(enc, name), dtype=torch.long)
              for name in ("input_ids", "attention_mask", "token_type_ids")}
    labels = torch.tensor([1, 0, 1, 0])
    loss = multi_depth_loss(model, labels, **inputs)
    with torch.no_grad():
        per_call = per_call_logits(model, **inputs)
    expected = sum(w * torch.nn.functional.cross_entropy(l, labels) for w, l in zip(depth_weights(3), per_call))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert model.classifier.weight.grad.abs().sum() > 0
    assert model.albert.encoder.albert_layer_groups[0].albert_layers[0].ffn.weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------- conversion and the WHILE


@pytest.fixture(scope="module")
def entropy_bundle(sharp_checkpoint, tmp_path_factory):
    from edge_albert.converters.convert import convert_checkpoint

    out = tmp_path_factory.mktemp("ee") / "sharp.edgealbert"
    result = convert_checkpoint(sharp_checkpoint, out, quantize="fp32", early_exit="entropy=0.5", samples=TEXTS)
    return result.variants[0]


@pytest.fixture(scope="module")
def patience_bundles(sharp_checkpoint, tmp_path_factory):
    from edge_albert.converters.convert import convert_checkpoint

    out = tmp_path_factory.mktemp("ee") / "sharp.edgealbert"
    result = convert_checkpoint(sharp_checkpoint, out, quantize="fp32,dynamic-int8", early_exit="patience=1")
    return {v.quantize: v for v in result.variants}


def _reference(checkpoint_dir, rule, texts):
    from edge_albert.hf.early_exit import reference_early_exit
    from edge_albert.hf.reference import load_reference_model

    enc = _encode(checkpoint_dir, texts)
    logits, calls, _ = reference_early_exit(load_reference_model(checkpoint_dir), rule, enc.input_ids, enc.attention_mask,
                                            enc.token_type_ids)
    return logits, calls


def test_manifest_records_the_rule_and_verification_checked_every_exit(entropy_bundle, patience_bundles):
    manifest = entropy_bundle.bundle.manifest
    assert manifest["early_exit"] == {"rule": "entropy", "default": 0.5, "input": "exit_entropy",
                                      "calls_output": "layer_calls", "max_calls": 3}
    assert {"name": "exit_entropy", "dtype": "float32", "shape": []} in manifest["inputs"]
    assert {"name": "layer_calls", "dtype": "int32", "shape": [-1]} in manifest["outputs"]
    assert manifest["validation"]["exit_call_agreement"] == 1.0
    assert manifest["validation"]["passed"] and manifest["validation"]["max_abs_diff"] <= 1e-4
    assert manifest["inspection"]["operators"]["WHILE"] == 1
    fp32 = patience_bundles["fp32"].bundle.manifest
    assert fp32["early_exit"]["default"] == 1 and fp32["early_exit"]["input"] == "exit_patience"
    assert patience_bundles["dynamic-int8"].check.exit_call_agreement is not None


@pytest.mark.parametrize("threshold", [0.0, 0.489, 0.5, 0.505, 0.512, 0.52])
def test_entropy_bundle_matches_pytorch_at_any_runtime_threshold(entropy_bundle, sharp_checkpoint, threshold):
    from edge_albert.tasks import TextClassifier

    model = TextClassifier.load(entropy_bundle.bundle_path)
    model.set_exit_value(threshold)
    assert model.exit_rule == ExitRule("entropy", threshold)
    logits, calls = model.logits_and_calls(TEXTS)
    ref_logits, ref_calls = _reference(sharp_checkpoint, ExitRule("entropy", threshold), TEXTS)
    assert calls.tolist() == ref_calls.tolist()
    np.testing.assert_allclose(logits, ref_logits, rtol=0, atol=1e-4)


def test_the_default_threshold_splits_inputs_across_exit_calls(entropy_bundle, sharp_checkpoint):
    """Otherwise the parity and batch tests above would not exercise rows that stop at different calls."""
    _, calls = _reference(sharp_checkpoint, ExitRule("entropy", 0.5), TEXTS)
    assert len(set(calls.tolist())) >= 2


@pytest.mark.parametrize("patience", [0, 1, 2, 3])
def test_patience_bundle_matches_pytorch_at_any_runtime_patience(patience_bundles, sharp_checkpoint, patience):
    from edge_albert.tasks import TextClassifier

    model = TextClassifier.load(patience_bundles["fp32"].bundle_path)
    model.set_exit_value(patience)
    logits, calls = model.logits_and_calls(TEXTS)
    ref_logits, ref_calls = _reference(sharp_checkpoint, ExitRule("patience", patience), TEXTS)
    assert calls.tolist() == ref_calls.tolist()
    np.testing.assert_allclose(logits, ref_logits, rtol=0, atol=1e-4)


def test_every_row_of_a_batch_gets_its_answer_alone(entropy_bundle):
    from edge_albert.tasks import TextClassifier

    batched = TextClassifier.load(entropy_bundle.bundle_path, batch_size=len(TEXTS))
    alone = TextClassifier.load(entropy_bundle.bundle_path, batch_size=1)
    logits, calls = batched.logits_and_calls(TEXTS)
    for row, text in enumerate(TEXTS):
        one_logits, one_calls = alone.logits_and_calls([text])
        assert one_calls.tolist() == [calls[row]], text
        np.testing.assert_allclose(one_logits[0], logits[row], rtol=0, atol=1e-5)
    assert len(set(calls.tolist())) >= 2  # the batch mixed early and late exits


def test_predict_reports_layer_calls_and_exit_value_changes_them(entropy_bundle):
    path = str(entropy_bundle.bundle_path)
    result = CliRunner().invoke(main, ["predict", path, "ok", "the"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert all(1 <= row["layer_calls"] <= 3 for row in rows)
    never = CliRunner().invoke(main, ["predict", path, "--exit-value", "0", "ok", "the"])
    assert [json.loads(line)["layer_calls"] for line in never.output.splitlines()] == [3, 3]
    inspect = CliRunner().invoke(main, ["inspect", path])
    assert "early exit:    entropy, default 0.5 (runtime input exit_entropy)" in inspect.output


def test_full_depth_bundles_report_no_calls(tmp_path, tiny_classifier_checkpoint):
    from edge_albert.converters.convert import convert_checkpoint
    from edge_albert.tasks import TextClassifier

    bundle = convert_checkpoint(tiny_classifier_checkpoint, tmp_path / "plain.edgealbert", quantize="fp32").bundle
    model = TextClassifier.load(bundle.path)
    assert model.exit_rule is None and model.predict("ok")[0].layer_calls is None
    assert "layer_calls" not in model.predict("ok")[0].to_dict()
    with pytest.raises(EdgeAlbertError, match="not an early-exit bundle"):
        model.set_exit_value(1)


def test_evaluate_reports_accuracy_and_the_call_distribution(entropy_bundle, sharp_checkpoint, tmp_path):
    from edge_albert.converters.accuracy_gate import evaluate_against_reference
    from edge_albert.evaluate import report_text

    data = tmp_path / "dev.tsv"
    data.write_text("sentence\tlabel\n" + "".join(f"{t.replace(chr(9), ' ')}\t{i % 2}\n" for i, t in enumerate(TEXTS)))
    report = evaluate_against_reference(entropy_bundle.bundle_path, data, reference_checkpoint=sharp_checkpoint)
    summary = report.early_exit
    assert summary["rule"] == "entropy=0.5" and summary["max_calls"] == 3
    assert sum(summary["exits_per_call"].values()) == len(TEXTS)
    _, ref_calls = _reference(sharp_checkpoint, ExitRule("entropy", 0.5), [t.replace("\t", " ") for t in TEXTS])
    assert summary["mean_calls"] == pytest.approx(ref_calls.mean())
    assert report.reference.early_exit == summary and report.agreement == 1.0  # same rule on both sides
    assert "early exit entropy=0.5: mean" in report_text(report)
    assert report.to_dict()["early_exit"] == summary


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("task", ["question-answering", "token-classification", "feature-extraction"])
def test_other_tasks_are_refused_in_one_line_before_conversion(task, tmp_path, monkeypatch):
    from edge_albert.converters import convert as convert_module

    def no_graph(*args, **kwargs):
        raise AssertionError("conversion work started")

    monkeypatch.setattr(convert_module, "start_conversion", no_graph)  # the worker builds the graph
    monkeypatch.setattr(convert_module, "load_reference_model", no_graph)
    checkpoint = make_albert_checkpoint(tmp_path / task, task=task)
    out = tmp_path / "out.edgealbert"
    result = CliRunner().invoke(main, ["convert", str(checkpoint), "-o", str(out), "--early-exit", "patience=2"])
    assert result.exit_code == 1
    assert result.output.count("error:") == 1 and "Traceback" not in result.output
    assert "error: --early-exit supports text classification only" in result.output
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--graph", "unrolled"], "--early-exit needs --graph loop"),
    (["--graph", "unrolled", "--quantize", "int8"], "--early-exit needs --graph loop"),
    (["--quantize", "int8"], "--early-exit cannot be combined with full int8"),
    (["--quantize", "fp32,int8"], "--early-exit cannot be combined with full int8"),
])
def test_graph_forms_and_precisions_without_a_loop_are_refused(args, message, tiny_classifier_checkpoint, tmp_path,
                                                               monkeypatch):
    from edge_albert.converters import convert as convert_module

    def no_work(*args, **kwargs):
        raise AssertionError("conversion work started")

    monkeypatch.setattr(convert_module, "load_checkpoint", no_work)
    out = tmp_path / "out.edgealbert"
    result = CliRunner().invoke(main, ["convert", str(tiny_classifier_checkpoint), "-o", str(out),
                                       "--early-exit", "patience=1", *args])
    assert result.exit_code == 1
    assert result.output.count("error:") == 1 and message in result.output
    assert not any(tmp_path.iterdir())


def test_a_bad_rule_is_one_error_line(tiny_classifier_checkpoint, tmp_path):
    result = CliRunner().invoke(main, ["convert", str(tiny_classifier_checkpoint), "-o", str(tmp_path / "o"),
                                       "--early-exit", "patience=two"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: --early-exit patience= needs a number, not 'two'"


@pytest.mark.parametrize("rule, message", [
    ("patience=3000000000", "--early-exit patience must be a whole number of calls from 0 to 2147483647, not 3e+09"),
    ("entropy=1e39", "--early-exit entropy must be a number from 0 to 3.40282e+38, not 1e+39"),
    ("entropy=inf", "--early-exit entropy must be a number from 0 to 3.40282e+38, not inf"),
])
def test_values_the_model_input_cannot_carry_are_refused_before_conversion(rule, message, tiny_classifier_checkpoint,
                                                                          tmp_path, monkeypatch):
    from edge_albert.converters import convert as convert_module

    monkeypatch.setattr(convert_module, "load_checkpoint", lambda *a, **k: pytest.fail("conversion work started"))
    result = CliRunner().invoke(main, ["convert", str(tiny_classifier_checkpoint), "-o", str(tmp_path / "o"),
                                       "--early-exit", rule])
    assert result.exit_code == 1 and result.output.strip() == f"error: {message}"
    assert not any(tmp_path.iterdir())


def test_a_runtime_value_beyond_int32_is_one_line_in_predict(patience_bundles):
    path = str(patience_bundles["fp32"].bundle_path)
    result = CliRunner().invoke(main, ["predict", path, "--exit-value", "3e9", "ok"])
    assert result.exit_code == 1 and result.output.strip() == (
        "error: --exit-value patience must be a whole number of calls from 0 to 2147483647, not 3e+09")
    from edge_albert import load_model

    model = load_model(path)
    with pytest.raises(ValueError, match="exit_value patience must be a whole number"):
        model.set_exit_value(2**31)
    model.set_exit_value(2**31 - 1)  # the largest value the int32 input carries still runs
    assert model.predict(["ok"])[0].layer_calls == 3


@pytest.mark.parametrize("entry, field", [
    ("entropy", "'early_exit'"), ([1, 2], "'early_exit'"), ({"rule": "speed"}, "'early_exit.rule'"),
    ({"rule": "entropy", "default": "x", "input": "exit_entropy", "calls_output": "layer_calls"}, "'early_exit.default'"),
    ({"rule": "patience", "default": 1e20, "input": "exit_patience", "calls_output": "layer_calls"},
     "'early_exit.default'"),
    ({"rule": "entropy", "default": 0.5, "input": 3, "calls_output": "layer_calls"}, "'early_exit.input'"),
    ({"rule": "entropy", "default": 0.5, "input": "exit_entropy"}, "'early_exit.calls_output'"),
    ({"rule": "entropy", "default": 0.5, "input": "exit_entropy", "calls_output": "layer_calls", "max_calls": "3"},
     "'early_exit.max_calls'"),
])
def test_a_wrong_shaped_early_exit_field_is_one_line_in_predict_and_inspect(entropy_bundle, tmp_path, entry, field):
    import shutil

    bundle = tmp_path / "edited.edgealbert"
    shutil.copytree(entropy_bundle.bundle_path, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["early_exit"] = entry
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    for args in (["predict", str(bundle), "ok"], ["inspect", str(bundle)], ["inspect", "--json", str(bundle)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert result.output.startswith("error: ") and f"field {field} must be" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1


def test_export_android_refuses_an_early_exit_bundle_in_one_line(entropy_bundle, tmp_path):
    assets = tmp_path / "assets"
    result = CliRunner().invoke(main, ["export-android", str(entropy_bundle.bundle_path), str(assets)])
    assert result.exit_code == 1
    assert result.output.startswith("error: the bundle stops early (entropy=0.5)") and result.output.count("\n") == 1
    assert not assets.exists()


def test_bench_on_real_texts_reports_latency_and_the_exit_distribution(entropy_bundle, tmp_path):
    from edge_albert.bench import run_texts_benchmark
    from edge_albert.tasks import TextClassifier

    model = TextClassifier.load(entropy_bundle.bundle_path, batch_size=1)
    result = run_texts_benchmark(model, TEXTS, repeats=2, warmup=1)
    logits, calls = model.logits_and_calls(TEXTS)
    assert result.layer_calls == calls.tolist() and result.labels == logits.argmax(-1).tolist()
    assert result.early_exit["mean_calls"] == pytest.approx(calls.mean())
    assert result.latency.runs == len(TEXTS) and len(result.per_text_ms) == len(TEXTS)

    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(t.replace("\t", " ") for t in TEXTS) + "\n")
    out = tmp_path / "bench.json"
    cli = CliRunner().invoke(main, ["bench", str(entropy_bundle.bundle_path), "--texts", str(texts), "--repeats", "1",
                                    "--exit-value", "0", "--threads", "1", "--json", str(out)])
    assert cli.exit_code == 0, cli.output
    assert "early exit entropy=0: mean 3.00 of 3 layer calls" in cli.output
    assert json.loads(out.read_text())["layer_calls"] == [3] * len(TEXTS)


# --------------------------------------------------------------------------- the trained example


@pytest.mark.slow
def test_trained_example_exits_early_without_losing_accuracy(tmp_path):
    """examples/sst2-albert-early-exit at entropy 0.5: about 1.5 of 4 calls, no SST-2 dev accuracy lost.

    Measured on PyTorch and dynamic-int8 alike (benchmarks/results/early-exit): 81.54% / 81.42%,
    the same labels as full depth for every dev sentence.
    """
    from tests.project_data import SST2_DEV

    from edge_albert.converters.convert import convert_checkpoint
    from edge_albert.evaluate import evaluate_bundle

    example = EXAMPLE_EARLY_EXIT
    result = convert_checkpoint(example, tmp_path / "ee.edgealbert", quantize="dynamic-int8",
                                early_exit="entropy=0.5", eval_data=SST2_DEV)
    variant = result.variants[0]
    assert variant.bundled and variant.accuracy.passed
    reference = result.reference_evaluation
    assert reference.metrics.accuracy >= 0.81 and reference.early_exit["mean_calls"] < 1.7
    report = evaluate_bundle(variant.bundle_path, SST2_DEV)
    assert report.metrics.accuracy >= 0.81
    assert report.early_exit["mean_calls"] < 1.7
    assert report.early_exit["exits_per_call"]["1"] > 0.7 * report.n


def test_serve_answers_an_early_exit_bundle_like_predict(entropy_bundle):
    """The server micro-batches requests: every text still gets its own exit and layer_calls."""
    from starlette.testclient import TestClient

    from edge_albert import load_model
    from edge_albert.serve import ServeConfig, create_app

    model = load_model(entropy_bundle.bundle_path, num_threads=1)
    expected = [json.loads(json.dumps(p.to_dict())) for p in model.predict(TEXTS)]
    assert len({row["layer_calls"] for row in expected}) >= 2  # the texts exit at different calls
    with TestClient(create_app({"ee": model}, ServeConfig())) as client:
        batch = client.post("/v1/models/ee/predict", json={"texts": TEXTS})
        assert batch.status_code == 200 and batch.json()["results"] == expected
        one = client.post("/v1/models/ee/predict", json={"text": TEXTS[-1]}).json()["result"]
        assert one == expected[-1]
