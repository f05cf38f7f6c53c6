"""Students against their teacher in one run: parameters, dynamic-int8 size, latency, dev accuracy.

Each checkpoint is converted with `edge-albert convert --quantize dynamic-int8 --eval-data DEV`
(the converter's own PyTorch-vs-TFLite checks and accuracy gate), then every bundle is timed in
the same process in alternating rounds (model by model, length by length, repeated), so machine
load hits all of them alike; ratios are taken against the teacher from the same rounds.

    python benchmarks/compress_table.py --dev data/glue-sst2/dev.tsv --out benchmarks/results/compress \
        teacher=examples/sst2-albert student=examples/sst2-albert-student ...

`--no-eval` skips the accuracy evaluation (random-weight shapes: speed only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_albert.bench import inputs_of_length, machine_info, time_runs  # noqa: E402
from edge_albert.hf.macs import albert_macs  # noqa: E402


def convert(name: str, checkpoint: Path, out_dir: Path, dev, reuse: bool = False) -> dict:
    from edge_albert.bundle import load_bundle
    from edge_albert.converters.convert import convert_checkpoint

    bundle_path = out_dir / f"{name}.edgealbert"
    started = time.perf_counter()
    if reuse and bundle_path.is_dir():  # converted by an earlier run of this script with the same arguments
        manifest = load_bundle(bundle_path).manifest
        inspection, check = manifest["inspection"], manifest["validation"]
        file_bytes, agreement = inspection["file_bytes"], check.get("label_agreement")
    else:
        result = convert_checkpoint(checkpoint, bundle_path, quantize="dynamic-int8", eval_data=dev, overwrite=True,
                                    force=True)
        variant = result.variants[0]
        manifest = variant.bundle.manifest
        file_bytes, agreement = variant.inspection.file_bytes, variant.check.label_agreement
    config = manifest["source"]["config"]
    accuracy = manifest["validation"].get("accuracy") or {}
    return {
        "name": name, "checkpoint": str(checkpoint), "bundle": str(bundle_path),
        "shape": {k: config.get(k) for k in ("num_hidden_layers", "num_attention_heads", "intermediate_size",
                                             "hidden_size", "embedding_size")} | {"pruned_heads": config.get("pruned_heads", [])},
        "parameters": manifest["source"]["parameters"],
        "model_tflite_bytes": file_bytes,
        "int8_label_agreement": agreement,
        "pytorch_dev_accuracy": accuracy.get("reference"), "int8_dev_accuracy": accuracy.get("variant"),
        "macs": {seq: albert_macs(config, seq)["total"] for seq in (32, 128)},
        "convert_seconds": round(time.perf_counter() - started, 1),
    }


def measure(rows, seq_lens, rounds: int, runs: int, threads: int) -> None:
    from edge_albert.tasks import load_model

    sessions = {}
    for row in rows:
        model = load_model(row["bundle"], num_threads=threads)
        sessions[row["name"]] = (model.session, {seq: inputs_of_length(model.tokenizer, seq) for seq in seq_lens})
    samples = {(row["name"], seq): [] for row in rows for seq in seq_lens}
    for _ in range(rounds):
        for row in rows:
            session, inputs = sessions[row["name"]]
            for seq in seq_lens:
                ids, mask, types = inputs[seq]
                got, _ = time_runs(lambda: session.run(ids, mask, types), runs, warmup=2)
                samples[(row["name"], seq)].extend(got)
    for row in rows:
        row["latency_ms"] = {seq: {"p50": float(np.percentile(samples[(row["name"], seq)], 50)),
                                   "min": float(np.min(samples[(row["name"], seq)])),
                                   "runs": len(samples[(row["name"], seq)])} for seq in seq_lens}


def markdown(rows, seq_lens, teacher: str, with_accuracy: bool) -> str:
    base = next(r for r in rows if r["name"] == teacher)
    head = ["model", "calls", "heads", "FFN", "parameters", "int8 .tflite"]
    head += [f"p50 seq {s} (x teacher)" for s in seq_lens] + [f"min seq {s} (x teacher)" for s in seq_lens]
    head += ["MACs seq 128 (x teacher)"]
    if with_accuracy:
        head += ["dev acc PyTorch", "dev acc int8"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        shape = r["shape"]
        heads = shape["num_attention_heads"] - len(shape["pruned_heads"])
        cells = [r["name"], str(shape["num_hidden_layers"]), str(heads), str(shape["intermediate_size"]),
                 f"{r['parameters']:,}", f"{r['model_tflite_bytes'] / 1e6:.2f} MB"]
        for s in seq_lens:
            p50 = r["latency_ms"][s]["p50"]
            cells.append(f"{p50:.2f} ms ({p50 / base['latency_ms'][s]['p50']:.2f})")
        for s in seq_lens:
            low = r["latency_ms"][s]["min"]
            cells.append(f"{low:.2f} ms ({low / base['latency_ms'][s]['min']:.2f})")
        cells.append(f"{r['macs'][128] / 1e6:.0f} M ({r['macs'][128] / base['macs'][128]:.2f})")
        if with_accuracy:
            cells += [f"{100 * r['pytorch_dev_accuracy']:.2f}%", f"{100 * r['int8_dev_accuracy']:.2f}%"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="NAME=CHECKPOINT_DIR; the first is the teacher (ratios against it)")
    parser.add_argument("--dev", default=None)
    parser.add_argument("--no-eval", action="store_true")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seq-lens", default="32,128")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per model, length and round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reuse-bundles", action="store_true", help="time bundles already in OUT/bundles")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seq_lens = [int(s) for s in args.seq_lens.split(",")]
    dev = None if args.no_eval else args.dev
    rows = []
    for spec in args.models:
        name, _, path = spec.partition("=")
        print(f"converting {name} ({path})", flush=True)
        rows.append(convert(name, Path(path), out / "bundles", dev, args.reuse_bundles))
    print("timing", flush=True)
    machine = machine_info()
    measure(rows, seq_lens, args.rounds, args.runs, args.threads)
    machine["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    table = markdown(rows, seq_lens, rows[0]["name"], dev is not None)
    record = {"command": "python " + " ".join([sys.argv[0], *(argv or sys.argv[1:])]), "machine": machine,
              "settings": {"seq_lens": seq_lens, "rounds": args.rounds, "runs": args.runs, "threads": args.threads,
                           "quantization": "dynamic-int8", "graph": "loop", "dev": dev},
              "python": platform.python_version(), "rows": rows}
    (out / "result.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "result.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
