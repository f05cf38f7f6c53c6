"""`pip install .` without extras gives a working runtime: no TensorFlow, PyTorch or transformers needed."""

from __future__ import annotations

import json
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from runtime_bundles import bundle_for

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_base_install_predicts_without_heavy_packages(tmp_path):
    bundle = bundle_for(tmp_path, "text-classification")
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    python = environment / "bin" / "python"
    # From a copy: an in-tree build would leave build/ and *.egg-info in the shared checkout.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "android_demo", "*.edgealbert"))
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(source)],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    missing = subprocess.run(
        [str(python), "-c", "import importlib.util as u; "
                            "print([m for m in ('tensorflow', 'torch', 'transformers') if u.find_spec(m)])"],
        capture_output=True, text=True, timeout=60)
    assert missing.stdout.strip() == "[]", "the base install pulled in a heavy package: " + missing.stdout
    predicted = subprocess.run([str(environment / "bin" / "edge-albert"), "predict", str(bundle), "a fine film", ""],
                               capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    lines = [json.loads(line) for line in predicted.stdout.splitlines()]
    assert [line["text"] for line in lines] == ["a fine film", ""]
    assert all(line["label"] in ("negative", "positive") for line in lines)
