"""The on-device runtime on a Raspberry Pi (aarch64, Debian 12, Python 3.11), under qemu.

scripts/arm_emulation.py provides the emulated Pi (qemu-user 10, an arm64 python3.11 sysroot,
aarch64 wheels). Each runtime set runs ONE emulated process (imports under emulation cost
seconds) that executes DRIVER below, which uses this repository's own `edge_albert` package;
the same driver runs natively on x86 for the comparison. Runs: ai-edge-litert 2.3.0 + numpy 2
on a Pi 4 (cortex-a72) and a Pi 5 (cortex-a76, whose dot-product int8 kernels differ), and
tflite-runtime 2.14.0 + numpy<2 on a Pi 4. Rules for comparing:
- fp32 models must give the x86 numbers to 1e-5;
- dynamic-int8 kernels differ by architecture (about 1e-2 on logits at albert-base shape), so
  an int8 bundle on ARM is compared with the PyTorch reference under the bundle's recorded
  runtime tolerance, and must give PyTorch's label wherever PyTorch's margin exceeds twice
  that tolerance; never ARM int8 vs x86 int8 at 1e-5.
A missing prerequisite (qemu, Debian mirror, PyPI) fails with the set-up error; nothing skips.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "scripts"))

import arm_emulation  # noqa: E402
from tests.checkpoints import TINY_SHAPE, make_albert_checkpoint  # noqa: E402

pytestmark = pytest.mark.slow

# run name -> (wheel set, interpreter backend, qemu CPU)
RUNS = {
    "litert-pi4": ("litert", "ai_edge_litert", "cortex-a72"),
    "litert-pi5": ("litert", "ai_edge_litert", "cortex-a76"),
    "tflite-runtime-pi4": ("tflite-runtime", "tflite_runtime", "cortex-a72"),
}
FP32_ATOL = 1e-5
NUM_THREADS = 2
MAX_SEQ_LEN = 32
# With the default initializer_range (0.02) a random tiny ALBERT gives every text the same
# logits to within int8 noise, so an int8 label check would prove nothing; 0.2 spreads them.
CHECKPOINT_SHAPE = {**TINY_SHAPE, "initializer_range": 0.2}
TEXTS = [
    "hello, my dog is cute",
    "the movie was terrible and boring",
    "a",
    "an absolutely wonderful, moving film",
    "I would not recommend this to anyone.",
    "Raspberry Pi 5 runs ALBERT",
    "what a waste of two hours",
    "Ünïcödé ñ 東京 🙂 — It's 3:45pm; $12.50!",
    "brilliant acting, weak plot, " * 6 + "and an ending longer than the bundle's max_seq_len",
]
# Bundles: name -> (quantize, per_channel_dense). tflite-runtime 2.14 cannot run per-channel
# dynamic int8 (FULLY_CONNECTED v12): the Pi user must get a clear error naming the runtime.
BUNDLES = {"fp32": ("fp32", True), "dynamic-int8": ("dynamic-int8", True),
           "dynamic-int8-per-tensor": ("dynamic-int8", False)}

# Runs inside the emulated Pi (and natively for the x86 side). Standard library, numpy, the
# interpreter package and edge_albert only: exactly what a Pi has after `pip install edge-albert`.
DRIVER = r'''
import json, platform, sys, time

job = json.load(open(sys.argv[1]))
started = time.monotonic()
out = {"machine": platform.machine(), "python": platform.python_version()}
import numpy as np
if job["backend"] == "ai_edge_litert":
    from ai_edge_litert.interpreter import Interpreter
else:
    from tflite_runtime.interpreter import Interpreter
import edge_albert
out.update(numpy=np.__version__, backend=Interpreter.__module__, edge_albert=edge_albert.__file__)


def invoke(interpreter, feeds):
    """Feed arrays by input name (matched as a substring of the TFLite tensor name)."""
    details = interpreter.get_input_details()
    for detail in details:
        name = next(key for key in feeds if key in detail["name"])
        if list(detail["shape"]) != list(feeds[name].shape):
            interpreter.resize_tensor_input(detail["index"], feeds[name].shape)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        name = next(key for key in feeds if key in detail["name"])
        interpreter.set_tensor(detail["index"], feeds[name].astype(detail["dtype"]))
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]).tolist() for d in interpreter.get_output_details()]


out["raw"] = {}
for model in job.get("raw_models", []):
    interpreter = Interpreter(model_path=model["path"], num_threads=1)
    feeds = {k: np.asarray(v, dtype=model["dtypes"][k]) for k, v in model["feeds"].items()}
    out["raw"][model["name"]] = invoke(interpreter, feeds)

out["bundles"] = {}
for spec in job.get("bundles", []):
    try:
        from edge_albert import TextClassifier
        classifier = TextClassifier.load(spec["path"], num_threads=job["num_threads"], backend=job["backend"])
        logits = classifier.logits(job["texts"])
        predictions = classifier.predict(job["texts"])
        out["bundles"][spec["name"]] = {
            "backend": str(classifier.session.backend), "logits": logits.tolist(),
            "labels": [p.label for p in predictions], "scores": [p.score for p in predictions],
        }
    except Exception as exc:  # reported per bundle: one refused bundle must not hide the others
        out["bundles"][spec["name"]] = {"error": f"{type(exc).__name__}: {exc}"}

# The command a Pi user runs: `edge-albert predict BUNDLE TEXT...` (in-process, same parser).
import contextlib, io
from edge_albert.cli import main as cli_main
buffer = io.StringIO()
try:
    with contextlib.redirect_stdout(buffer):
        cli_main(["predict", job["cli_bundle"], "--threads", str(job["num_threads"]), "--backend", job["backend"],
                  *job["texts"]], standalone_mode=False)
    out["cli"] = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
except Exception as exc:
    out["cli"] = {"error": f"{type(exc).__name__}: {exc}"}

out["seconds"] = round(time.monotonic() - started, 2)
print("RESULT " + json.dumps(out))
'''


def run_driver(job: dict, tmp_path: Path, emulator: arm_emulation.Emulator | None) -> dict:
    """Run DRIVER on JOB under emulation (or natively when `emulator` is None); parse its result."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    driver, job_file = tmp_path / "driver.py", tmp_path / "job.json"
    driver.write_text(DRIVER)
    job_file.write_text(json.dumps(job))
    if emulator is None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONNOUSERSITE": "1"}
        proc = subprocess.run([sys.executable, str(driver), str(job_file)], cwd=REPO_ROOT,
                              env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"native driver failed:\n{proc.stderr[-3000:]}"
        stdout = proc.stdout
    else:
        stdout = emulator.python(str(driver), str(job_file), timeout=1800)
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"driver printed no result:\n{stdout[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


def make_tiny_tflite(path: Path) -> dict:
    """A float model with the op mix of an ALBERT layer (gather, dense, layer norm, attention,
    softmax, gelu, tanh pooler) on a dynamic [1, None] int32 input, plus a feed for it."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    table = tf.constant(rng.normal(size=(50, 16)).astype(np.float32))
    w_qkv = tf.constant(rng.normal(scale=0.3, size=(16, 48)).astype(np.float32))
    w_ffn = tf.constant(rng.normal(scale=0.3, size=(16, 24)).astype(np.float32))
    w_out = tf.constant(rng.normal(scale=0.3, size=(24, 3)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.int32, name="input_ids"),
                                  tf.TensorSpec([1, None], tf.int32, name="attention_mask")])
    def model(input_ids, attention_mask):
        x = tf.gather(table, input_ids)
        mean = tf.reduce_mean(x, axis=-1, keepdims=True)
        var = tf.reduce_mean(tf.square(x - mean), axis=-1, keepdims=True)
        x = (x - mean) * tf.math.rsqrt(var + 1e-12)
        q, k, v = tf.split(tf.matmul(x, w_qkv), 3, axis=-1)
        bias = (1.0 - tf.cast(attention_mask[:, None, :], tf.float32)) * -20.0
        attn = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) * 0.25 + bias, axis=-1)
        h = tf.nn.gelu(tf.matmul(tf.matmul(attn, v), w_ffn), approximate=True)
        return {"logits": tf.matmul(tf.tanh(h[:, 0, :]), w_out)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    path.write_bytes(converter.convert())
    ids = rng.integers(0, 50, size=(1, 7))
    mask = np.ones((1, 7), dtype=np.int64)
    mask[0, -2:] = 0
    return {"name": path.stem, "path": str(path), "feeds": {"input_ids": ids.tolist(), "attention_mask": mask.tolist()},
            "dtypes": {"input_ids": "int32", "attention_mask": "int32"}}


@pytest.fixture(scope="module")
def emulators() -> dict[str, arm_emulation.Emulator]:
    try:
        ready = arm_emulation.setup(sorted({wheels for wheels, _, _ in RUNS.values()}))
    except arm_emulation.ArmEmulationError as exc:
        pytest.fail(f"ARM emulation cannot be set up: {exc}", pytrace=False)
    return {name: arm_emulation.Emulator(ready[wheels].qemu, ready[wheels].sysroot, ready[wheels].wheels,
                                         cpu=cpu, pycache=ready[wheels].pycache)
            for name, (wheels, _, cpu) in RUNS.items()}


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict:
    """The tiny checkpoint, its bundles (made and verified by the project's converter) and the
    PyTorch reference logits for TEXTS."""
    import torch
    import transformers
    from edge_albert.bundle import load_bundle
    from edge_albert.converters.convert import convert_checkpoint

    work = tmp_path_factory.mktemp("arm-bundles")
    checkpoint = make_albert_checkpoint(work / "ckpt", shape=CHECKPOINT_SHAPE, seed=0)
    bundles = {}
    for per_channel in (True, False):  # one conversion call per graph setting: the TF graph is built once
        names = [name for name, (_, pc) in BUNDLES.items() if pc == per_channel]
        result = convert_checkpoint(checkpoint, work / ("tiny.edgealbert" if per_channel else "tiny-per-tensor.edgealbert"),
                                    quantize=[BUNDLES[name][0] for name in names], max_seq_len=MAX_SEQ_LEN,
                                    per_channel_dense=per_channel)
        for name, variant in zip(names, result.variants):
            assert variant.bundle is not None, f"the converter bundled nothing for {name}: {variant.check.message}"
            bundles[name] = load_bundle(variant.bundle.path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(checkpoint))
    model = transformers.AlbertForSequenceClassification.from_pretrained(str(checkpoint)).eval()
    with torch.no_grad():
        reference = np.concatenate([
            model(**tokenizer(text, truncation=True, max_length=MAX_SEQ_LEN, return_tensors="pt")).logits.numpy()
            for text in TEXTS
        ])
    return {"bundles": bundles, "reference": reference, "labels": bundles["fp32"].labels}


@pytest.fixture(scope="module")
def job(tmp_path_factory, converted) -> dict:
    work = tmp_path_factory.mktemp("arm-job")
    return {
        "raw_models": [make_tiny_tflite(work / "tiny_fp32.tflite")],
        "bundles": [{"name": name, "path": str(bundle.path)} for name, bundle in converted["bundles"].items()],
        "texts": TEXTS,
        "cli_bundle": str(converted["bundles"]["fp32"].path),
        "num_threads": NUM_THREADS,
    }


@pytest.fixture(scope="module")
def results(emulators, job, tmp_path_factory) -> dict[str, dict]:
    """One emulated process per run, plus the same driver natively on x86 (ai-edge-litert)."""
    work = tmp_path_factory.mktemp("arm-runs")
    out = {}
    for name, (_, backend, _) in RUNS.items():
        started = time.monotonic()
        out[name] = run_driver({**job, "backend": backend}, work / name, emulators[name])
        print(f"{name}: emulated run {time.monotonic() - started:.1f}s (driver {out[name]['seconds']}s)")
    out["x86"] = run_driver({**job, "backend": "ai_edge_litert"}, work / "x86", None)
    return out


def bundle_result(results: dict, run: str, bundle: str) -> dict:
    result = results[run]["bundles"][bundle]
    assert "error" not in result, f"{run} could not run the {bundle} bundle: {result['error']}"
    return result


@pytest.mark.parametrize("run", list(RUNS))
def test_emulated_userland_is_a_pi(results, run):
    wheels, backend, _ = RUNS[run]
    result = results[run]
    assert result["machine"] == "aarch64"
    assert result["python"].startswith("3.11.")
    assert result["backend"].startswith(backend)
    assert int(result["numpy"].split(".")[0]) == (2 if wheels == "litert" else 1)
    # The project's own runtime code ran, not an installed copy.
    assert Path(result["edge_albert"]).resolve() == REPO_ROOT / "edge_albert" / "__init__.py"


@pytest.mark.parametrize("run", list(RUNS))
def test_plain_fp32_tflite_matches_x86(results, job, run):
    """The harness itself: a hand-made fp32 model through the bare Interpreter."""
    assert job["raw_models"] and set(results[run]["raw"]) == {model["name"] for model in job["raw_models"]}
    for model in job["raw_models"]:
        arm = np.asarray(results[run]["raw"][model["name"]][0])
        x86 = np.asarray(results["x86"]["raw"][model["name"]][0])
        assert arm.shape == x86.shape == (1, 3)
        np.testing.assert_allclose(arm, x86, atol=FP32_ATOL, rtol=0)


def test_x86_runtime_matches_the_converter(results, converted):
    """The x86 side of the comparison is itself right: fp32 within the bundle's tolerance of PyTorch."""
    fp32 = np.asarray(bundle_result(results, "x86", "fp32")["logits"])
    tolerance = converted["bundles"]["fp32"].manifest["validation"]["runtime_tolerance"]
    np.testing.assert_allclose(fp32, converted["reference"], atol=tolerance, rtol=0)


@pytest.mark.parametrize("run", list(RUNS))
def test_fp32_bundle_equals_x86(results, converted, run):
    arm = bundle_result(results, run, "fp32")
    x86 = bundle_result(results, "x86", "fp32")
    assert arm["backend"].startswith(RUNS[run][1])
    np.testing.assert_allclose(np.asarray(arm["logits"]), np.asarray(x86["logits"]), atol=FP32_ATOL, rtol=0)
    np.testing.assert_allclose(arm["scores"], x86["scores"], atol=FP32_ATOL, rtol=0)
    assert arm["labels"] == x86["labels"]


@pytest.mark.parametrize("run", list(RUNS))
def test_predict_command_matches_x86(results, run):
    arm, x86 = results[run]["cli"], results["x86"]["cli"]
    assert isinstance(arm, list), f"edge-albert predict failed on {run}: {arm}"
    assert isinstance(x86, list), f"edge-albert predict failed on x86: {x86}"
    assert [r["text"] for r in arm] == TEXTS
    assert [r["label"] for r in arm] == [r["label"] for r in x86]
    assert [r["truncated"] for r in arm] == [r["truncated"] for r in x86]
    assert arm[-1]["truncated"], "the last text is longer than max_seq_len and must be reported truncated"
    np.testing.assert_allclose([r["score"] for r in arm], [r["score"] for r in x86], atol=FP32_ATOL, rtol=0)


def _int8_runs():
    for run, (_, backend, _) in RUNS.items():
        yield pytest.param(run, "dynamic-int8-per-tensor", id=f"{run}-per-tensor")
        if backend != "tflite_runtime":
            yield pytest.param(run, "dynamic-int8", id=f"{run}-per-channel")


@pytest.mark.parametrize("run,bundle", list(_int8_runs()))
def test_int8_bundle_within_its_tolerance_of_pytorch(results, converted, run, bundle):
    """int8 kernels differ by architecture: judge ARM by the reference, never by x86 at 1e-5."""
    result = bundle_result(results, run, bundle)
    manifest = converted["bundles"][bundle].manifest
    tolerance = manifest["validation"]["runtime_tolerance"]
    reference = converted["reference"]
    arm = np.asarray(result["logits"])
    diff = np.abs(arm - reference).max()
    x86 = results["x86"]["bundles"][bundle].get("logits")
    if x86 is not None:  # for the record (-s): how far the architectures' int8 kernels drift apart
        print(f"{run} {bundle}: |ARM-PyTorch| {diff:.3g}, |ARM-x86| {np.abs(arm - np.asarray(x86)).max():.3g}, "
              f"tolerance {tolerance:.3g}")
    assert diff <= tolerance, f"{run} {bundle}: max abs logit diff {diff:.3g} vs PyTorch exceeds {tolerance:.3g}"
    # Labels must agree wherever the reference decides them by more than the int8 error can move.
    ordered = np.sort(reference, axis=1)
    decided = (ordered[:, -1] - ordered[:, -2]) > 2 * tolerance
    assert decided.sum() >= 2, f"the test texts decide too few labels at tolerance {tolerance:.3g}"
    expected = [converted["labels"][i] for i in reference.argmax(axis=1)]
    got = result["labels"]
    assert [g for g, d in zip(got, decided) if d] == [e for e, d in zip(expected, decided) if d]


def test_tflite_runtime_refuses_per_channel_int8_clearly(results):
    """tflite-runtime 2.14 lacks FULLY_CONNECTED v12; the error must say which runtime to install."""
    error = results["tflite-runtime-pi4"]["bundles"]["dynamic-int8"].get("error", "")
    assert error.startswith("RuntimeBackendError"), f"expected a RuntimeBackendError, got {error or 'success'}"
    assert "ai-edge-litert" in error
