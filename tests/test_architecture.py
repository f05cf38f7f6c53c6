"""Layering and one-place rules of docs/design.md, checked on the source so that a change cannot quietly undo them.

Every module of the package is placed on a side (DEVICE, WORKSTATION, SHARED), found by walking the
package, so a new module cannot fall outside the rules.

Static (ast) checks: they read the files and import nothing, so they hold for lazy imports inside
functions too. The runtime counterpart (a bundle loads and predicts without tensorflow, torch or
transformers) is tests/test_runtime.py's import test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edge_albert"

# Every module of the package, by side (path under edge_albert/, without .py). A module in no list,
# or in two, fails test_every_module_is_classified: a new module is placed on purpose.
# Device: runs bundles on the light install, never imports the workstation side.
DEVICE = {"__init__", "android_export", "atomic", "bundle", "contract", "data", "device_options", "early_exit", "extras", "lifetime", "version",
          "errors", "evaluate", "model_work", "predict", "quantization", "report", "runtime", "signing", "tasks", "tflite_check",
          "tokenizer", "verbosity",
          "bench/__init__", "bench/budgets", "bench/machine", "bench/measure", "bench/report", "bench/scaling",
          "serve/__init__", "serve/app", "serve/batching", "serve/cluster", "serve/metrics", "serve/openapi",
          "serve/options", "serve/protocol", "serve/server"}
# Workstation: the TensorFlow / torch / transformers side (and its settings, read by the CLI).
WORKSTATION = {"finetune", "finetune_config", "hub", "tokenizer_training", "training",
               "compress/__init__", "compress/augment", "compress/distill", "compress/importance", "compress/options",
               "compress/plan", "compress/prune", "compress/run", "compress/foreign", "compress/foreign_options",
               "compress/teacher", "compress/teacher_outputs", "converters/weight_quantizer",
               "converters/__init__", "converters/accuracy_gate", "converters/convert", "converters/graph",
               "converters/manifest", "converters/options", "converters/samples", "converters/tflite",
               "converters/tflite_worker", "converters/verify",
               "mediapipe_export/__init__", "mediapipe_export/client", "mediapipe_export/export", "mediapipe_export/graph",
               "mediapipe_export/spiece", "mediapipe_export/worker",
               "hf/__init__", "hf/checkpoint", "hf/early_exit", "hf/macs", "hf/quiet", "hf/reference", "hf/weights"}
# Shared: the front door to both sides; it imports the workstation side only inside its commands,
# apart from the workstation settings it shows as defaults.
SHARED = {"cli"}
WORKSTATION_SETTINGS = {"compress/__init__", "compress/options", "compress/foreign_options", "finetune_config", "converters/options"}


def _dotted(module: str) -> str:
    """"compress/__init__" -> "edge_albert.compress", "hf/weights" -> "edge_albert.hf.weights"."""
    parts = [part for part in module.split("/") if part != "__init__"]
    return ".".join(["edge_albert", *parts])


def _is_workstation(name: str, modules=WORKSTATION) -> bool:
    """Whether the imported name `name` (edge_albert.x.y) is, or lies inside, a workstation module."""
    return any(name == _dotted(module) or name.startswith(_dotted(module) + ".") for module in modules
               if _dotted(module) != "edge_albert")


def test_every_module_is_classified():
    found = {str(path.relative_to(PACKAGE).with_suffix("")) for path in PACKAGE.rglob("*.py")}
    assert found, PACKAGE
    lists = [DEVICE, WORKSTATION, SHARED]
    assert sorted(found - set().union(*lists)) == [], "modules in no list: place them in DEVICE, WORKSTATION or SHARED"
    assert sorted(set().union(*lists) - found) == [], "listed modules that do not exist"
    assert sum(map(len, lists)) == len(found), "a module is in two lists"


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


@pytest.mark.parametrize("module", sorted(DEVICE))
def test_device_side_modules_import_nothing_from_the_workstation_side(module):
    imported = _package_imports(PACKAGE / f"{module}.py")
    crossing = sorted(name for name in imported if _is_workstation(name))
    assert crossing == [], f"{module}.py imports {crossing}"


def _module_level_imports(path: Path) -> set:
    """The edge_albert modules `path` imports outside its functions (what importing it loads)."""
    tree = ast.parse(path.read_text())
    top = ast.Module(body=[node for node in tree.body if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                                 ast.ClassDef))], type_ignores=[])
    return _package_imports(path, ast.unparse(top))


@pytest.mark.parametrize("module", sorted(SHARED))
def test_shared_modules_load_the_workstation_side_only_inside_functions(module):
    heavy = WORKSTATION - WORKSTATION_SETTINGS
    loaded = sorted(name for name in _module_level_imports(PACKAGE / f"{module}.py") if _is_workstation(name, heavy))
    assert loaded == [], f"{module}.py imports {loaded} when it is imported"
    assert any(_is_workstation(name) for name in _package_imports(PACKAGE / f"{module}.py")), "the check sees nothing"


def test_the_model_layer_sits_below_the_converter():
    """training, finetune, compress and hf/ build on the Hugging Face model layer (hf/), never on the converter."""
    users = [PACKAGE / "training.py", PACKAGE / "finetune.py", *sorted((PACKAGE / "compress").glob("*.py")),
             *sorted((PACKAGE / "hf").glob("*.py"))]
    for path in users:
        imported = _package_imports(path)
        crossing = sorted(name for name in imported
                          if name == "edge_albert.converters" or name.startswith("edge_albert.converters."))
        assert crossing == [], f"{path.relative_to(PACKAGE)} imports {crossing}"


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
    assert _files_with_string(lambda value: "albert_layer_groups" in value) == ["hf/weights.py"]


def test_model_inputs_and_signature_are_named_only_in_the_contract_and_the_pytorch_feeders():
    # HF keyword arguments of torch models, and the keys of a transformers tokenizer's output
    pytorch_feeders = {"training.py", "finetune.py", "compress/distill.py", "tokenizer_training.py"}
    assert _files_with_string(lambda value: value == "serving_default") == ["contract.py"]
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        assert set(_files_with_string(lambda value: value == name)) - pytorch_feeders == {"contract.py"}, name


def test_the_check_itself_sees_a_lazy_relative_import():
    app = PACKAGE / "serve" / "app.py"
    source = app.read_text() + "\n\ndef _late():\n    from ..converters import convert\n    from .. import finetune\n"
    imported = _package_imports(app, source)
    assert {"edge_albert.converters", "edge_albert.converters.convert", "edge_albert.finetune"} <= imported
    assert "edge_albert.converters" not in _package_imports(app)
