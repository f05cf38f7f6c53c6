"""The on-device runtime on a Raspberry Pi (aarch64, Debian 12, Python 3.11), under qemu.

scripts/arm_emulation.py provides the emulated Pi (qemu-user 10, an arm64 python3.11 sysroot,
aarch64 wheels). Each runtime set runs ONE emulated process (imports under emulation cost
seconds) that executes DRIVER below, which uses this repository's own `edge_albert` package;
the same driver runs natively on x86 for the comparison. Rules for comparing:
- fp32 models must give the x86 numbers to 1e-5;
- dynamic-int8 kernels differ by architecture (about 1e-2 on logits), so an int8 bundle on ARM
  is compared with the PyTorch reference under the bundle's own recorded tolerance and must
  give the same labels; never ARM int8 vs x86 int8 at 1e-5.
A missing prerequisite (qemu, Debian mirror, PyPI) fails with the set-up error; nothing skips.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "scripts"))

import arm_emulation  # noqa: E402

pytestmark = pytest.mark.slow

# ai-edge-litert 2.3.0 with numpy 2, and tflite-runtime 2.14.0 with numpy<2.
RUNTIMES = {"litert": "ai_edge_litert", "tflite-runtime": "tflite_runtime"}
FP32_ATOL = 1e-5

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
        return arm_emulation.setup(list(RUNTIMES))
    except arm_emulation.ArmEmulationError as exc:
        pytest.fail(f"ARM emulation cannot be set up: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("arm-job")
    return {"raw_models": [make_tiny_tflite(work / "tiny_fp32.tflite")]}


@pytest.fixture(scope="module")
def results(emulators, job, tmp_path_factory) -> dict[str, dict]:
    """One emulated run per runtime set plus one native run per backend available on x86."""
    work = tmp_path_factory.mktemp("arm-runs")
    out = {}
    for name, backend in RUNTIMES.items():
        out[name] = run_driver({**job, "backend": backend}, work / name, emulators[name])
    out["x86"] = run_driver({**job, "backend": "ai_edge_litert"}, work / "x86", None)
    return out


@pytest.mark.parametrize("runtime", list(RUNTIMES))
def test_emulated_userland_is_a_pi(results, runtime):
    result = results[runtime]
    assert result["machine"] == "aarch64"
    assert result["python"].startswith("3.11.")
    assert result["backend"].startswith(RUNTIMES[runtime])
    assert int(result["numpy"].split(".")[0]) == (2 if runtime == "litert" else 1)
    assert Path(result["edge_albert"]).resolve() == REPO_ROOT / "edge_albert" / "__init__.py"


@pytest.mark.parametrize("runtime", list(RUNTIMES))
def test_fp32_model_matches_x86(results, job, runtime):
    for model in job["raw_models"]:
        arm = np.asarray(results[runtime]["raw"][model["name"]][0])
        x86 = np.asarray(results["x86"]["raw"][model["name"]][0])
        assert arm.shape == x86.shape == (1, 3)
        np.testing.assert_allclose(arm, x86, atol=FP32_ATOL, rtol=0)
