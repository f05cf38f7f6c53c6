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


# Function-level imports (issue 19): an import inside a function must keep something off a path. It passes
# when it loads a library of HEAVY that its module's own top level does not (numpy only counts in the
# modules the CLI loads at start: `edge-albert --help` stays numpy-free, tests/test_cli_defaults.py), when
# it is the CLI's import of the workstation side (the layering rule above), or when a `# lazy: why` comment
# ends its line or stands alone on the line above. "Loads" follows the package's own top-level imports,
# transitively.
HEAVY = {"torch", "transformers", "tensorflow", "keras", "sentencepiece", "tokenizers", "ai_edge_litert",
         "tflite_runtime", "ai_edge_quantizer", "safetensors", "huggingface_hub", "accelerate", "ray", "fastapi",
         "uvicorn", "starlette", "flatbuffers", "sklearn", "numpy", "matplotlib", "mediapipe",
         # optional extras a device may lack: imported where used, their ImportError named there
         "cryptography", "psutil"}
LAZY_COMMENT = "# lazy:"


def _module_names() -> dict:
    """Dotted module name -> path, for every module of the package."""
    return {_dotted(str(path.relative_to(PACKAGE).with_suffix(""))): path for path in PACKAGE.rglob("*.py")}


def _import_targets(module: str, path: Path, node, modules) -> list:
    """What an import statement of `module` names: package modules (a submodule when `from . import x` is
    one), or the external module as written."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = ".".join((package[: len(package) - node.level + 1] if node.level else []) + ([node.module] if node.module else []))
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]


def _run_at_import(tree: ast.AST):
    """The nodes that run when the module is imported: not function bodies, not `if TYPE_CHECKING:`."""
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _loads(names, top: dict, modules) -> tuple:
    """(package modules, HEAVY libraries) that importing `names` loads, through the package's top-level imports."""
    seen, heavy, stack = set(), set(), list(names)
    while stack:
        parts = stack.pop().split(".")
        for name in (".".join(parts[:i]) for i in range(1, len(parts) + 1)):  # a parent package runs first
            if name in modules and name not in seen:
                seen.add(name)
                stack.extend(top[name])
            elif name not in modules and parts[0] in HEAVY:
                heavy.add(parts[0])
    return seen, heavy


def _function_level_imports(sources: dict) -> list:
    """(module, line, why) for every import inside a function; why is "heavy: ...", "workstation side",
    "comment" or "" (nothing kept off any path)."""
    modules = _module_names()
    trees = {module: ast.parse(sources[module]) for module in modules}
    top = {module: [target for node in _run_at_import(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                    for target in _import_targets(module, modules[module], node, modules)]
           for module, tree in trees.items()}
    numpy_free, _ = _loads(["edge_albert.cli"], top, modules)
    workstation = {_dotted(module) for module in WORKSTATION - WORKSTATION_SETTINGS}
    found = []
    for module, tree in sorted(trees.items()):
        lines = sources[module].splitlines()
        _, already = _loads([module], top, modules)
        nodes = {id(inner): inner for function in ast.walk(tree) if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
                 for statement in function.body for inner in ast.walk(statement) if isinstance(inner, (ast.Import, ast.ImportFrom))}
        for node in sorted(nodes.values(), key=lambda node: node.lineno):
            targets = _import_targets(module, modules[module], node, modules)
            gained = _loads(targets, top, modules)[1] - already - (set() if module in numpy_free else {"numpy"})
            above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
            own = "\n".join(lines[node.lineno - 1: node.end_lineno])
            commented = above.startswith(LAZY_COMMENT) or LAZY_COMMENT in own
            if gained:
                why = "heavy: " + ", ".join(sorted(gained))
            elif module in {_dotted(name) for name in SHARED} and any(_is_workstation(t, WORKSTATION - WORKSTATION_SETTINGS) for t in targets):
                why = "workstation side"
            elif commented:
                why = "comment"
            else:
                why = ""
            found.append((module, node.lineno, why))
    assert workstation and numpy_free, "the rules' inputs are empty"
    return found


def _sources() -> dict:
    return {module: path.read_text() for module, path in _module_names().items()}


def test_every_function_level_import_keeps_something_off_a_path():
    found = _function_level_imports(_sources())
    assert len(found) > 100, f"only {len(found)} function-level imports seen: the check reads nothing"
    assert {why.split(":")[0] for _, _, why in found} >= {"heavy", "workstation side", "comment"}
    light = [f"{module}:{line}" for module, line, why in found if not why]
    assert light == [], ("these imports inside functions load nothing their module has not loaded already: "
                         f"move them to the top, or say why with a `{LAZY_COMMENT}` comment: {light}")


def test_the_function_level_check_catches_a_light_lazy_import():
    sources = _sources()
    late = "\n\ndef _late():\n    import json\n    from .errors import DataError\n    import torch\n"
    sources["edge_albert.tasks"] += late
    flagged = [line for module, line, why in _function_level_imports(sources) if module == "edge_albert.tasks" and not why]
    first = len(sources["edge_albert.tasks"].splitlines()) - 2  # the line of `import json`
    assert flagged == [first, first + 1]
    sources["edge_albert.tasks"] = sources["edge_albert.tasks"].replace("    import json\n", "    import json  # lazy: why\n")
    assert [line for module, line, why in _function_level_imports(sources) if module == "edge_albert.tasks" and not why] == [first + 1]
