"""Pruned shapes at the albert-base-v2 size (random weights: speed and size only) against the
compute model: builds the checkpoints, then times them with compress_table.py in one run.

    python benchmarks/compress_base_shapes.py --work /tmp/base-shapes --out benchmarks/results/compress-base

Shapes: the base model (12 calls, 12 heads, FFN 3072), 6 of 12 heads, FFN 1536, and
6 calls + 6 heads + FFN 1536 (fewer calls alone is linear by construction). Removed heads/neurons are simply the last ones (weights are random,
so importance means nothing here); the student is built by the same code `compress` uses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SHAPES = {  # name: (calls, heads kept, FFN width)
    "base": (12, 12, 3072),
    "heads-6": (12, 6, 3072),
    "ffn-1536": (12, 12, 1536),
    "calls-6-heads-6-ffn-1536": (6, 6, 1536),
}


def build(work: Path) -> dict:
    import shutil

    import torch
    from tests.checkpoints import BASE_SHAPE, make_albert_checkpoint
    from transformers import AlbertForSequenceClassification

    from edge_albert.compress.plan import CompressionPlan
    from edge_albert.compress.prune import build_student

    base_dir = work / "base"
    if not (base_dir / "config.json").is_file():
        make_albert_checkpoint(base_dir, shape=BASE_SHAPE)
    teacher = AlbertForSequenceClassification.from_pretrained(str(base_dir), dtype=torch.float32).eval()
    dirs = {"base": base_dir}
    for name, (calls, heads, ffn) in SHAPES.items():
        if name == "base":
            continue
        out = work / name
        if not (out / "config.json").is_file():
            plan = CompressionPlan(num_hidden_layers=calls, heads=heads, intermediate_size=ffn)
            student = build_student(teacher, plan, list(range(heads, 12)), list(range(ffn)))
            student.save_pretrained(str(out))
            for file in ("tokenizer.json", "tokenizer_config.json", "spiece.model"):
                if (base_dir / file).is_file():
                    shutil.copyfile(base_dir / file, out / file)
        dirs[name] = out
    return dirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True, help="where the random checkpoints go (not committed)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reuse-bundles", action="store_true", help="time the bundles an earlier run left in OUT")
    args = parser.parse_args()
    dirs = build(Path(args.work))
    import compress_table

    compress_table.main(["--no-eval", "--out", args.out, "--seq-lens", "128", "--rounds", str(args.rounds),
                         "--runs", str(args.runs), "--threads", str(args.threads),
                         *(["--reuse-bundles"] if args.reuse_bundles else []),
                         *[f"{name}={path}" for name, path in dirs.items()]])


if __name__ == "__main__":
    main()
