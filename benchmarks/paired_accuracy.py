"""Checkpoints scored on the same dev rows, compared pairwise: is a difference in accuracy real?

With 872 SST-2 dev sentences one standard error of an accuracy near 80% is about 1.3 points, but
two models scored on the same sentences mostly agree, so a paired test is far more sensitive than
comparing the two accuracies: McNemar's exact test on the sentences exactly one of them gets right
(two-sided binomial, p = 0.5), and a paired bootstrap (resampling sentences, both models together)
for a 95% interval of the difference.

    python benchmarks/paired_accuracy.py --dev data/glue-sst2/dev.tsv --out benchmarks/results/compress-augment/paired \
        A=/tmp/augexp/students/A-real4096-8ep B=/tmp/augexp/students/B-real4096-aug7 --compare A:B

Each checkpoint is reloaded from its files in float32 with transformers (the accuracy of the saved
weights, as `edge-albert compress` records it); its compression.json, when present, is copied into
the result (settings, data, training log).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_albert.bench import machine_info  # noqa: E402


def correct_per_row(checkpoint: Path, dev_path: Path, threads: int) -> np.ndarray:
    """1 where the checkpoint labels a dev row correctly, 0 where not, in file order."""
    import torch
    from transformers import AlbertForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    from edge_albert.hf.checkpoint import load_checkpoint
    from edge_albert.data import read_examples
    from edge_albert.training import EncodedDataset, batches

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    model = AlbertForSequenceClassification.from_pretrained(str(checkpoint), dtype=torch.float32).eval()
    dev = EncodedDataset(tokenizer, read_examples(dev_path, labels=load_checkpoint(checkpoint).labels), 128)
    out = []
    with torch.no_grad():
        for batch in batches(dev, DataCollatorWithPadding(tokenizer), 128):
            labels = batch.pop("labels")
            out.append((model(**batch).logits.argmax(-1) == labels).numpy())
    return np.concatenate(out).astype(np.int8)


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> dict:
    """Two-sided exact McNemar: of the rows exactly one model gets right, is the split 50/50?"""
    only_a, only_b = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
    n, k = only_a + only_b, min(only_a, only_b)
    p = 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)
    return {"only_first_right": only_a, "only_second_right": only_b, "p_value": p}


def pooled(rows: dict, names: str) -> np.ndarray:
    """One model's right/wrong per row, or for NAME+NAME+... (seeds of one recipe) the fraction right."""
    return np.mean([rows[name] for name in names.split("+")], axis=0)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, resamples: int = 10000, seed: int = 0) -> dict:
    """95% interval of accuracy(b) - accuracy(a), resampling rows with both models' results together."""
    rng = np.random.default_rng(seed)
    diff = b.astype(np.float64) - a.astype(np.float64)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    return {"resamples": resamples, "seed": seed, "difference": float(diff.mean()),
            "ci95": [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]}


def cpu_flags() -> list:
    """Every flag of the first CPU in /proc/cpuinfo (the kernels torch may pick depend on them)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith(("flags", "Features")):
            return line.split(":", 1)[1].split()
    return []


def versions() -> dict:
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "numpy": np.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="NAME=CHECKPOINT_DIR")
    parser.add_argument("--dev", required=True, type=Path)
    parser.add_argument("--compare", action="append", default=[],
                        help="FIRST:SECOND (names, or NAME+NAME+... to pool seeds per row); repeatable")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True, type=Path, help="writes OUT.json and OUT.md")
    args = parser.parse_args()

    models, rows = {}, {}
    for spec in args.checkpoints:
        name, path = spec.split("=", 1)
        rows[name] = correct_per_row(Path(path), args.dev, args.threads)
        record_path = Path(path) / "compression.json"
        record = json.loads(record_path.read_text()) if record_path.is_file() else None
        models[name] = {"checkpoint": path, "dev_accuracy": float(rows[name].mean()), "dev_rows": int(len(rows[name])),
                        "compression": record}
        print(f"{name}: {rows[name].mean():.4f} ({path})", flush=True)
    comparisons = []
    for spec in args.compare:
        first, second = spec.split(":")
        a, b = pooled(rows, first), pooled(rows, second)
        single = "+" not in spec  # McNemar needs one right/wrong per row; a pool of seeds has fractions
        comparisons.append({"first": first, "second": second, "mcnemar_exact": mcnemar_exact(a, b) if single else None,
                            "paired_bootstrap": paired_bootstrap(a, b)})
    result = {"command": "python " + " ".join(sys.argv), "machine": {**machine_info(), "cpu_flags": cpu_flags()},
              "versions": versions(), "dev": str(args.dev), "models": models, "comparisons": comparisons}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["| model | dev accuracy |", "|---|---|"]
    lines += [f"| {name} | {m['dev_accuracy']:.2%} |" for name, m in models.items()]
    lines += ["", "| second - first | difference | 95% paired bootstrap | only first right / only second right | "
              "McNemar exact p |", "|---|---|---|---|---|"]
    for c in comparisons:
        boot, mc = c["paired_bootstrap"], c["mcnemar_exact"]
        lines.append(f"| {c['second']} - {c['first']} | {boot['difference'] * 100:+.2f} pts | "
                     f"[{boot['ci95'][0] * 100:+.2f}, {boot['ci95'][1] * 100:+.2f}] | "
                     + (f"{mc['only_first_right']} / {mc['only_second_right']} | {mc['p_value']:.3f} |" if mc else
                        "(pooled seeds) | - |"))
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
