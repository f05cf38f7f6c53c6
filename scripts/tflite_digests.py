"""Convert the same tiny random checkpoints with one checkout and print each .tflite's sha256, so two
checkouts can be compared byte for byte after a refactoring (the issue 10 and 19 "converted bytes stay
the same" check: task x graph form x mode, early exit included).

    python scripts/tflite_digests.py OLD_CHECKOUT /tmp/digests/old > old.json   # e.g. a `git worktree add --detach`
    python scripts/tflite_digests.py .            /tmp/digests/new > new.json
    diff old.json new.json && echo identical

Every variant is bundled with force=True: random tiny models can miss the label-agreement gate, and
the bytes, not the gate, are compared. A case whose bundles exist in OUT is not converted again.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

TINY = dict(vocab_size=30000, embedding_size=32, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
            intermediate_size=128, max_position_embeddings=128)
CASES = [  # (task, graph form, modes, extra ConvertOptions)
    ("text-classification", "loop", "fp32,dynamic-int8,fp16", {}),
    ("text-classification", "unrolled", "fp32,dynamic-int8", {}),
    ("question-answering", "loop", "fp32,dynamic-int8", {}),
    ("token-classification", "loop", "dynamic-int8", {}),
    ("feature-extraction", "unrolled", "fp32", {}),
    ("text-classification", "loop", "fp32,dynamic-int8", {"early_exit": "entropy=0.3"}),
]


def main(checkout: Path, out: Path) -> dict:
    sys.path[:0] = [str(checkout), str(checkout / "tests")]  # that checkout's package and test helpers
    from checkpoints import make_albert_checkpoint
    from edge_albert.converters.convert import convert_checkpoint

    digests = {}
    for i, (task, graph, modes, extra) in enumerate(CASES):
        checkpoint = out / f"ck-{i}"
        if not checkpoint.exists():
            make_albert_checkpoint(checkpoint, task=task, shape=TINY, seed=i)
        if not list(out.glob(f"b{i}*.edgealbert")):
            convert_checkpoint(checkpoint, out / f"b{i}.edgealbert", quantize=modes, graph=graph, force=True, **extra)
        for bundle in sorted(out.glob(f"b{i}*.edgealbert")):
            for model in bundle.glob("*.tflite"):
                digests[f"{task} {graph} {extra or ''} {bundle.name}"] = hashlib.sha256(model.read_bytes()).hexdigest()
    return digests


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python scripts/tflite_digests.py CHECKOUT OUT_DIR")
    print(json.dumps(main(Path(sys.argv[1]).resolve(), Path(sys.argv[2])), indent=1))
