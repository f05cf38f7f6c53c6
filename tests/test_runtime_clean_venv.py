"""The device install as the README gives it: `make wheel`'s wheel with one interpreter extra, in a
fresh venv, runs `edge-albert predict` with no TensorFlow, PyTorch or transformers, and pip reports
no dependency conflict for either interpreter (ai-edge-litert, tflite-runtime)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.runtime_bundles import bundle_for

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def device_wheel(tmp_path_factory) -> Path:
    """The wheel `make wheel` builds, made from a copy so the checkout gets no build/ or *.egg-info."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "out", "*.egg-info", "__pycache__", ".pytest_cache", "android_demo",
        "*.edgealbert", "data", "examples", "benchmarks"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "-w", str(root / "dist"), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    wheels = list((root / "dist").glob("edge_albert-*-py3-none-any.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.mark.slow
@pytest.mark.parametrize("extra, backend", [("litert", "ai_edge_litert"), ("tflite-runtime", "tflite_runtime")])
def test_device_install_predicts_without_heavy_packages(extra, backend, device_wheel, tmp_path):
    bundle = bundle_for(tmp_path, "text-classification")
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    python = environment / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"{device_wheel}[{extra}]"],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    assert "ERROR" not in install.stderr, install.stderr[-3000:]
    consistent = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert consistent.returncode == 0, consistent.stdout + consistent.stderr
    missing = subprocess.run(
        [str(python), "-c", "import importlib.util as u; "
                            "print([m for m in ('tensorflow', 'torch', 'transformers') if u.find_spec(m)])"],
        capture_output=True, text=True, timeout=60)
    assert missing.stdout.strip() == "[]", "the device install pulled in a heavy package: " + missing.stdout
    predicted = subprocess.run([str(environment / "bin" / "edge-albert"), "predict", "--backend", backend,
                                str(bundle), "a fine film", ""],
                               capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    lines = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert [line["text"] for line in lines] == ["a fine film", ""]
    assert all(line["label"] in ("negative", "positive") for line in lines)
