"""Layering and one-place rules of docs/design.md, checked on the source so that a change cannot quietly undo them.

Static (ast) checks: they read the files and import nothing, so they hold for lazy imports inside
functions too. The runtime counterpart (a bundle loads and predicts without tensorflow, torch or
transformers) is tests/test_runtime.py's import test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edge_albert"
WORKSTATION = ("converters", "compress", "finetune", "training")  # TensorFlow / torch / transformers side
DEVICE_MODULES = ["bundle", "contract", "data", "device_options", "early_exit", "errors", "evaluate", "predict",
                  "quantization", "report", "runtime", "signing", "tasks", "tflite_check", "tokenizer", "verbosity",
                  "atomic", "bench", "android_export", "serve/app", "serve/batching", "serve/metrics",
                  "serve/openapi", "serve/options", "serve/protocol", "serve/server"]


def _package_imports(path: Path, source: str | None = None) -> set:
    """The edge_albert modules `path` imports anywhere in its body (relative imports resolved)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - node.level]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [f"{module}.{alias.name}" for alias in node.names] if node.module is None or node.level else []
            found.update([module, *names])
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("edge_albert")}


@pytest.mark.parametrize("module", DEVICE_MODULES)
def test_device_side_modules_import_nothing_from_the_workstation_side(module):
    imported = _package_imports(PACKAGE / f"{module}.py")
    crossing = sorted(name for name in imported
                      if any(name == f"edge_albert.{side}" or name.startswith(f"edge_albert.{side}.")
                             for side in WORKSTATION))
    assert crossing == [], f"{module}.py imports {crossing}"


def _files_with_string(matches) -> list:
    """Files of the package with a string constant (not a docstring) for which `matches(value)` holds."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)}
        if any(isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
               and matches(node.value) for node in ast.walk(tree)):
            found.append(str(path.relative_to(PACKAGE)))
    return sorted(found)


def test_quantization_modes_are_spelled_only_in_the_modes_table():
    for mode in ("fp32", "fp16", "dynamic-int8", "int8", "dynamic-int4", "dynamic-int4-block32", "dynamic-int4-mixed"):
        assert _files_with_string(lambda value: value == mode) == ["quantization.py"], mode


def test_hugging_face_weight_names_are_spelled_only_in_the_weight_table():
    assert _files_with_string(lambda value: "albert_layer_groups" in value) == ["converters/weights.py"]


def test_model_inputs_and_signature_are_named_only_in_the_contract_and_the_pytorch_feeders():
    pytorch_feeders = {"training.py", "finetune.py", "compress/distill.py"}  # HF keyword arguments of torch models
    assert _files_with_string(lambda value: value == "serving_default") == ["contract.py"]
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        assert set(_files_with_string(lambda value: value == name)) - pytorch_feeders == {"contract.py"}, name


def test_the_check_itself_sees_a_lazy_relative_import():
    app = PACKAGE / "serve" / "app.py"
    source = app.read_text() + "\n\ndef _late():\n    from ..converters import convert\n    from .. import finetune\n"
    imported = _package_imports(app, source)
    assert {"edge_albert.converters", "edge_albert.converters.convert", "edge_albert.finetune"} <= imported
    assert "edge_albert.converters" not in _package_imports(app)
