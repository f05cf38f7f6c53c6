"""The word-embedding lookup before and after issue 21 (2-D ids GATHER vs 1-D ids GATHER + RESHAPEs):
fp32 parity against PyTorch and fp32/dynamic-int8 latency, in one interleaved run.

Usage: python benchmarks/embedding_lookup.py CKPT WORKDIR OUT.json [--seq-lens 8,32,128] [--runs 15]

"after" bundles are converted by this tree; "before" ones by a copy of it whose graph.embed looks the
words up as main did at 648dc96 (`tf.gather(table, input_ids)` with [batch, seq] ids). Existing bundles
under WORKDIR are reused. Timing as benchmarks/int4.py: raw signature runner, 2 threads, batch 1,
round-robin over the bundles, median per bundle and length; "ratio" is after / before.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import int4  # noqa: E402  (the runner, inputs and CPU flags of the int4 benchmark)

ROOT = Path(__file__).resolve().parents[1]
MODES = ("fp32", "dynamic-int8")
NEW_LOOKUP = """    words = tf.reshape(tf.gather(table, tf.reshape(input_ids, [-1])),
                       tf.concat([tf.shape(input_ids), tf.shape(table)[1:]], 0))"""
OLD_LOOKUP = "    words = tf.gather(table, input_ids)"


def _before_tree(workdir: Path) -> Path:
    """A copy of edge_albert whose embedding is main's 648dc96 lookup (everything else as this tree)."""
    tree = workdir / "before-tree"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(ROOT / "edge_albert", tree / "edge_albert", ignore=shutil.ignore_patterns("__pycache__"))
    graph = tree / "edge_albert" / "converters" / "graph.py"
    source = graph.read_text()
    if NEW_LOOKUP not in source:
        raise SystemExit("graph.embed no longer has the lookup this benchmark reverts; update NEW_LOOKUP")
    graph.write_text(source.replace(NEW_LOOKUP, OLD_LOOKUP))
    return tree


def _convert(checkpoint: Path, out: Path, pythonpath: Path) -> None:
    if all(out.with_name(f"{out.stem}-{mode}.edgealbert").is_dir() for mode in MODES):
        return
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    # cwd too: `python -m` puts the working directory ahead of PYTHONPATH
    subprocess.run([sys.executable, "-m", "edge_albert.cli", "convert", str(checkpoint.resolve()), "-o", str(out.resolve()),
                    "--quantize", ",".join(MODES), "--overwrite"], check=True, env=env, cwd=pythonpath)


def _parity(checkpoint: Path, bundles: dict, seq_lens) -> dict:
    """Max abs logit difference against PyTorch per fp32 bundle and length (batch 2, one row half padding)."""
    sys.path.insert(0, str(ROOT))
    from edge_albert.converters import verify
    from edge_albert.hf.checkpoint import load_checkpoint

    rng = np.random.RandomState(0)
    batches = []
    for length in seq_lens:
        ids = rng.randint(5, 30000, size=(2, length)).astype(np.int32)
        mask = np.ones_like(ids)
        mask[1, length // 2:] = 0
        batches.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
    reference = verify.reference_outputs(load_checkpoint(checkpoint), batches)
    parity = {}
    for name, path in bundles.items():
        if not name.startswith("fp32"):
            continue
        got = verify.tflite_outputs((path / "model.tflite").read_bytes(), batches, ["logits"])
        parity[name] = {length: float(np.abs(r["logits"] - g["logits"]).max())
                        for length, r, g in zip(seq_lens, reference, got)}
    return parity


def main(argv) -> int:
    checkpoint, workdir, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    seq_lens, runs = [8, 32, 128], 15
    rest = iter(argv[3:])
    for arg in rest:
        if arg == "--seq-lens":
            seq_lens = [int(n) for n in next(rest).split(",")]
        elif arg == "--runs":
            runs = int(next(rest))
    workdir.mkdir(parents=True, exist_ok=True)
    _convert(checkpoint, workdir / "after" / "base.edgealbert", ROOT)
    _convert(checkpoint, workdir / "before" / "base.edgealbert", _before_tree(workdir))
    bundles = {f"{mode}-{when}": workdir / when / f"base-{mode}.edgealbert" for mode in MODES for when in ("before", "after")}
    result = {"command": "python benchmarks/embedding_lookup.py " + " ".join(argv), "machine": platform.machine(),
              "cpu_flags": int4._cpu_flags(), "threads": int4.THREADS, "runs": runs,
              "model_bytes": {name: (path / "model.tflite").stat().st_size for name, path in bundles.items()},
              "fp32_max_abs_diff_vs_pytorch": _parity(checkpoint, bundles, seq_lens), "lengths": {}}
    print(json.dumps(result, indent=1), flush=True)
    runners = {name: int4._runner(path / "model.tflite") for name, path in bundles.items()}
    for length in seq_lens:
        inputs = int4._inputs(length)
        medians = int4.interleaved_medians_ms(runners, inputs, runs)
        row = {name: {"median_ms": round(ms, 3)} for name, ms in medians.items()}
        for mode in MODES:
            row[f"{mode}-after"]["ratio"] = round(medians[f"{mode}-after"] / medians[f"{mode}-before"], 3)
        result["lengths"][length] = row
        print(length, {name: f"{ms:.2f} ms" for name, ms in medians.items()},
              {mode: row[f"{mode}-after"]["ratio"] for mode in MODES}, flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
