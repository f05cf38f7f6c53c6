"""The numbers behind issue 10 ("one idea, one place"), printed for a repository checkout.

Longest functions; how many files spell each quantization mode and model input name; import
statements from evaluate.py into converters; files spelling Hugging Face weight names. It counts
quoted literals anywhere (docstrings too), so it reads a little higher than
tests/test_architecture.py, which enforces the rules on code only.

Usage: python scripts/arch_metrics.py [REPO_ROOT]
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

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


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
