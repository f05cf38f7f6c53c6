"""Early exit against full depth: accuracy, mean layer calls and latency on real text, in one run.

    python benchmarks/early_exit.py                                   # the early-exit example on SST-2 dev
    python benchmarks/early_exit.py --base-shape --limit 200          # albert-base-v2 shape, random weights: speed only
    python benchmarks/early_exit.py --checkpoint COMPRESSED --reference UNCOMPRESSED   # + latency x the uncompressed model

Converts the checkpoint twice to dynamic-int8 (loop form): a plain full-depth bundle and an
early-exit bundle (patience, and entropy unless --no-entropy), then times every text alone
(batch 1, one interpreter thread) for the full-depth bundle and for each patience / threshold,
set at run time on the same early-exit bundle. Passes go round all configurations in turn
(--repeats times), so a busy spell of a shared machine hits every configuration alike; each
text's median over the passes counts once. Accuracy comes from the same timed runs. Writes
JSON and a Markdown table (with the machine's CPU flags and load average) to --out. With
--reference, the full-depth dynamic-int8 bundle of another checkpoint (the model a compressed one
replaces) is timed in the same passes, and every row also reads as points and latency against it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_albert.bench import LatencyStats, machine_info, run_texts_benchmark  # noqa: E402
from edge_albert.early_exit import call_distribution  # noqa: E402

if TYPE_CHECKING:
    from edge_albert.tasks import TextClassifier

DEFAULT_CHECKPOINT = REPO / "examples" / "sst2-albert-early-exit"
DEFAULT_DATA = REPO / "data" / "glue-sst2" / "dev.tsv"
DEFAULT_PATIENCE = (0, 1, 2, 3, 4)
REFERENCE = "reference, full depth"  # the row of --reference's bundle
DEFAULT_ENTROPY = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def measure(configs: Dict[str, tuple], texts: Sequence[str], gold: Optional[Sequence[int]], repeats: int,
            say) -> List[dict]:
    """configs: name -> (TextClassifier, exit value or None). Round-robin passes, then one row per config."""
    passes: Dict[str, list] = {name: [] for name in configs}
    for repeat in range(repeats):
        for name, (model, value) in configs.items():
            if value is not None:
                model.set_exit_value(value)
            started = time.perf_counter()
            passes[name].append(run_texts_benchmark(model, texts, repeats=1, warmup=5 if repeat == 0 else 0))
            say(f"pass {repeat + 1}/{repeats} {name}: {time.perf_counter() - started:.1f} s")
    rows = []
    for name, results in passes.items():
        per_text = np.median([r.per_text_ms for r in results], axis=0)
        first = results[0]
        stats = LatencyStats.from_samples(per_text.tolist())
        row = {"config": name, "texts": len(texts), "repeats": repeats, "p50_ms": stats.p50_ms,
               "mean_ms": stats.mean_ms, "p90_ms": stats.p90_ms, "p99_ms": stats.p99_ms}
        if gold is not None:
            row["accuracy"] = float(np.mean(np.asarray(first.labels) == np.asarray(gold)))
        depth = int(configs[name][0].bundle.manifest.get("early_exit", {}).get("max_calls") or 0)
        row.update(call_distribution(first.layer_calls, depth) if first.layer_calls else {"mean_calls": None})
        if any(r.labels != first.labels or r.layer_calls != first.layer_calls for r in results[1:]):
            raise SystemExit(f"{name}: predictions differ between passes (nondeterministic runtime?)")
        row["labels"] = first.labels
        rows.append(row)
    full_labels = np.asarray(rows[0]["labels"])  # the first config is full depth
    for row in rows:
        row["agreement_with_full_depth"] = float(np.mean(np.asarray(row.pop("labels")) == full_labels))
    return rows


def markdown(rows: List[dict], header: dict) -> str:
    full = next(r for r in rows if r["config"] == "full depth")
    lines = [f"# Early exit: {header['title']}", "", "Command:", "", f"    {header['command']}", "",
             f"- checkpoint: {header['checkpoint']} ({header['layers']} calls of the shared layer); bundles "
             f"dynamic-int8, loop form; {header['texts']} texts of {header['data']}, each alone (batch 1), "
             f"{header['repeats']} passes round-robin, each text's median counts once; texts in "
             f"{header['order']}",
             f"- machine: {header['machine'].get('cpu_model')}, {header['machine']['cores']} cores, "
             f"{header['machine']['architecture']} ({', '.join(header['machine'].get('simd') or [])}), "
             f"1 interpreter thread, {header['backend']}; load average {header['machine'].get('load_average')} before, "
             f"{header['load_after']} after",
             "", "| config | accuracy | points vs full | same label as full | mean calls | exits after call 1..L | "
             "p50 ms | mean ms | mean speed-up | p50 speed-up |", "|---|---|---|---|---|---|---|---|---|---|"]
    reference = next((r for r in rows if r["config"] == REFERENCE), None)
    if reference is not None:
        lines[-2] += " points vs reference | mean latency x reference |"
        lines[-1] += "---|---|"
    for r in rows:
        accuracy = f"{r['accuracy']:.2%}" if "accuracy" in r else "-"
        points = f"{100 * (r['accuracy'] - full['accuracy']):+.2f}" if "accuracy" in r else "-"
        calls = "-" if r["mean_calls"] is None else f"{r['mean_calls']:.2f}"
        exits = "-" if r["mean_calls"] is None else "/".join(str(n) for n in r["exits_per_call"].values())
        lines.append(f"| {r['config']} | {accuracy} | {points} | {r['agreement_with_full_depth']:.1%} | {calls} | {exits} | {r['p50_ms']:.2f} | "
                     f"{r['mean_ms']:.2f} | {full['mean_ms'] / r['mean_ms']:.2f}x | {full['p50_ms'] / r['p50_ms']:.2f}x |")
        if reference is not None:
            vs = f"{100 * (r['accuracy'] - reference['accuracy']):+.2f}" if "accuracy" in r else "-"
            lines[-1] += f" {vs} | {r['mean_ms'] / reference['mean_ms']:.3f}x |"
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--base-shape", action="store_true",
                        help="a random checkpoint at the albert-base-v2 shape (tests/checkpoints.py BASE_SHAPE): speed only")
    parser.add_argument("--reference", type=Path, default=None,
                        help="an uncompressed checkpoint: its full-depth bundle is timed in the same passes")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=None, help="the first N texts only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--patience", default=",".join(map(str, DEFAULT_PATIENCE)))
    parser.add_argument("--entropy", default=",".join(map(str, DEFAULT_ENTROPY)), help="thresholds; empty for none")
    parser.add_argument("--sort-by-length", action="store_true",
                        help="time the texts shortest first: the interpreter re-plans its memory only when the "
                             "length bucket grows, so the table shows model compute, not per-text re-allocation")
    parser.add_argument("--out", type=Path, required=True, help="results stem: writes OUT.json and OUT.md")
    return parser


def _load_models(checkpoint: Path, scratch: Path, thresholds: List[float],
                 reference: Optional[Path] = None) -> Dict[str, TextClassifier]:
    """The full-depth model, the patience model, and (with thresholds) the entropy model, converted here."""
    from edge_albert.converters.convert import convert_checkpoint
    from edge_albert.tasks import TextClassifier

    bundles = {"full": convert_checkpoint(checkpoint, scratch / "full.edgealbert").bundle,
               "patience": convert_checkpoint(checkpoint, scratch / "patience.edgealbert",
                                              early_exit="patience=1").bundle}
    if thresholds:
        bundles["entropy"] = convert_checkpoint(checkpoint, scratch / "entropy.edgealbert",
                                                early_exit=f"entropy={thresholds[0]}").bundle
    if reference is not None:
        bundles["reference"] = convert_checkpoint(reference, scratch / "reference.edgealbert").bundle
    return {kind: TextClassifier.load(bundle.path, num_threads=1, batch_size=1) for kind, bundle in bundles.items()}


def _examples(args: argparse.Namespace, full: TextClassifier) -> list:
    """The evaluation examples to time: the first --limit, shortest first with --sort-by-length."""
    from edge_albert.evaluate import load_eval_data

    data = load_eval_data(args.data, "text-classification", full.labels)
    examples = data.examples[:args.limit]
    if args.sort_by_length:
        tokenizer = full.tokenizer
        examples = sorted(examples, key=lambda e: tokenizer.count_tokens(e.text))
    return examples


def _configs(models: Dict[str, TextClassifier], patience: List[int], thresholds: List[float]) -> Dict[str, tuple]:
    """Table row name -> (model, exit setting): full depth, then each patience, then each entropy threshold."""
    configs: Dict[str, tuple] = {"full depth": (models["full"], None)}
    configs.update({f"patience={p}": (models["patience"], p) for p in patience})
    configs.update({f"entropy={t:g}": (models["entropy"], t) for t in thresholds})
    if "reference" in models:
        configs[REFERENCE] = (models["reference"], None)
    return configs


def _header(args: argparse.Namespace, command: str, machine: dict, layers: int, texts: int, full: TextClassifier) -> dict:
    """What the results were measured on: checkpoint, data, machine, backend, order."""
    shown = os.path.relpath(args.checkpoint, REPO) if args.checkpoint.resolve().is_relative_to(REPO) else str(args.checkpoint)
    return {"title": "albert-base-v2 shape, random weights (speed only)" if args.base_shape else shown,
            "command": command, "checkpoint": "BASE_SHAPE random" if args.base_shape else shown,
            "reference": str(args.reference) if args.reference else None,
            "layers": layers, "texts": texts, "data": args.data.name, "repeats": args.repeats,
            "machine": machine, "backend": f"{full.session.backend}",
            "load_after": [round(x, 2) for x in os.getloadavg()],
            "order": "length order (shortest first)" if args.sort_by_length else "file order"}


def _write_results(out: Path, rows: List[dict], header: dict, base_shape: bool) -> str:
    """Write OUT.json and OUT.md; return the markdown report."""
    out.parent.mkdir(parents=True, exist_ok=True)
    report = markdown(rows, header)
    if base_shape:
        report += ("\nRandom weights: accuracy and agreement mean nothing here; the exits show where a random "
                   "model's label happens to stay unchanged, so read the table as latency against calls.\n")
    out.with_suffix(".json").write_text(json.dumps({"header": header, "rows": rows}, indent=2) + "\n")
    out.with_suffix(".md").write_text(report)
    return report


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    say = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    command = "python benchmarks/early_exit.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="edge-albert-early-exit-") as scratch:
        checkpoint = args.checkpoint
        if args.base_shape:
            from tests.checkpoints import BASE_SHAPE, make_albert_checkpoint

            checkpoint = make_albert_checkpoint(Path(scratch) / "base", shape=BASE_SHAPE)
        patience = [int(p) for p in args.patience.split(",") if p.strip()]
        thresholds = [float(t) for t in args.entropy.split(",") if t.strip()]
        say(f"converting {checkpoint}")
        models = _load_models(checkpoint, Path(scratch), thresholds, args.reference)
        examples = _examples(args, models["full"])
        texts = [e.text for e in examples]
        gold = None if args.base_shape else [e.label for e in examples]
        rows = measure(_configs(models, patience, thresholds), texts, gold, args.repeats, say)
        layers = models["full"].bundle.manifest["source"]["config"]["num_hidden_layers"]
    header = _header(args, command, machine, layers, len(texts), models["full"])
    print(_write_results(args.out, rows, header, args.base_shape))
    return 0


if __name__ == "__main__":
    sys.exit(main())
