"""The numbers behind issues 10 and 19 (architecture), printed for a repository checkout.

Issue 10: longest functions; how many files spell each quantization mode and model input name;
import statements from evaluate.py into converters; files spelling Hugging Face weight names. It
counts quoted literals anywhere (docstrings too), so it reads a little higher than
tests/test_architecture.py, which enforces the rules on code only.

Issue 19: files over 500 lines; import cycles among the package's modules (every import statement,
function-level ones too, relative imports resolved,
not those under `if TYPE_CHECKING:`); import statements from training, finetune,
compress and benchmarks into `converters`; import statements inside functions.

Usage: python scripts/arch_metrics.py [REPO_ROOT]
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Dict, List, Set

LITERALS = ("fp32", "fp16", "dynamic-int8", "int8", "input_ids", "attention_mask", "token_type_ids", "serving_default")


def main(root: Path) -> None:
    files = sorted((root / "edge_albert").rglob("*.py")) + sorted((root / "benchmarks").glob("*.py"))
    texts = {path: path.read_text() for path in files}
    functions = []
    for path, text in texts.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append((node.end_lineno - node.lineno + 1, f"{path.relative_to(root)}:{node.name}"))
    print("longest functions:", sorted(functions, reverse=True)[:6])
    for literal in LITERALS:
        pattern = r"""["']%s["']""" % re.escape(literal)
        hits = [str(path.relative_to(root)) for path, text in texts.items() if re.search(pattern, text)]
        print(f"{literal}: {len(hits)} {hits}")
    evaluate = (root / "edge_albert" / "evaluate.py").read_text()
    print("evaluate -> converters imports:", len(re.findall(r"^\s*(?:from|import) .*converters", evaluate, re.M)))
    weights = [str(path.relative_to(root)) for path, text in texts.items() if "albert_layer_groups" in text]
    print("files spelling albert_layer_groups:", len(weights), weights)
    print_issue_19(root)


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST):
    """Every node of `tree` except those under `if TYPE_CHECKING:` (imports for type checkers, never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _imported_modules(root: Path, path: Path, modules: Set[str]) -> Set[str]:
    """The package modules `path` imports anywhere in its body (an imported name that is a module counts as it)."""
    name = _module_name(root, path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{module}.{alias.name}" for alias in node.names]
            found.update(target for target in targets if target in modules)
            if module in modules and not all(target in modules for target in targets):
                found.add(module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
    return found - {name}


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components of more than one module (Tarjan), each an import cycle."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _function_level_imports(tree: ast.AST) -> int:
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            count += sum(isinstance(inner, (ast.Import, ast.ImportFrom)) for statement in node.body
                         for inner in ast.walk(statement)
                         if not isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return count


def print_issue_19(root: Path) -> None:
    package = sorted((root / "edge_albert").rglob("*.py"))
    long_files = sorted(((len(path.read_text().splitlines()), str(path.relative_to(root))) for path in package),
                        reverse=True)
    print("files over 500 lines:", len([1 for lines, _ in long_files if lines > 500]),
          [f"{name} {lines}" for lines, name in long_files if lines > 500])
    modules = {_module_name(root, path) for path in package}
    graph = {_module_name(root, path): _imported_modules(root, path, modules) for path in package}
    cycles = _cycles(graph)
    print("import cycles:", len(cycles), cycles)
    callers = [path for path in package if path.stem in ("training", "finetune")
               or "compress" in path.relative_to(root).parts] + sorted((root / "benchmarks").glob("*.py"))
    pattern = re.compile(r"^\s*(?:from|import) \S*converters", re.M)
    hits = {str(path.relative_to(root)): len(pattern.findall(path.read_text())) for path in callers}
    package_hits = sum(count for name, count in hits.items() if name.startswith("edge_albert"))
    print("imports from training/finetune/compress into converters:", package_hits,
          "; from benchmarks:", sum(hits.values()) - package_hits, {name: n for name, n in hits.items() if n})
    per_file = {str(path.relative_to(root)): _function_level_imports(ast.parse(path.read_text())) for path in package}
    print("function-level imports in edge_albert:", sum(per_file.values()),
          sorted(((n, name) for name, n in per_file.items() if n), reverse=True)[:8])


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
