"""A small SST-2 run with `edge_albert.finetune` on whatever edge_albert PYTHONPATH points at.

Used to check that moving finetune from its hand-written loop onto transformers' Trainer kept
the training comparable: same data, same seed, dev accuracy per epoch. Commands and numbers:
benchmarks/results/finetune-trainer/README.md.

    python benchmarks/finetune_loop_compare.py NAME SEED TRAIN.tsv DEV.tsv OUT_ROOT
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from edge_albert.finetune import FinetuneConfig, finetune


def main(name: str, seed: int, train: str, dev: str, out_root: str) -> None:
    config = FinetuneConfig(vocab_size=2000, embedding_size=64, hidden_size=128, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=256, max_position_embeddings=64, max_length=64,
                            epochs=3, batch_size=32, learning_rate=5e-4, warmup_ratio=0.06, seed=seed, threads=1)
    out = Path(out_root) / f"{name}-{seed}"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    result = finetune(train, out, dev, config, log=lambda line: None)
    print(json.dumps({"impl": name, "seed": seed, "dev_accuracy": result.dev_accuracy,
                      "seconds": round(time.perf_counter() - started, 1),
                      "history": [(e["epoch"], round(e["train_loss"], 4), round(e.get("dev_accuracy", -1), 4))
                                  for e in result.history]}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:6])
