"""Train the example ALBERT sentiment model (examples/sst2-albert) on GLUE SST-2 from scratch.

    python examples/finetune_sst2.py                 # the recipe behind examples/sst2-albert
    python examples/finetune_sst2.py --epochs 1 --out /tmp/sst2-quick
    python examples/finetune_sst2.py --init-from examples/sst2-albert --multi-depth --epochs 1 \
        --learning-rate 2e-4 --out examples/sst2-albert-early-exit     # the early-exit example

Reads data/glue-sst2/{train,dev}.tsv from the repository (or --data-dir), trains the
SentencePiece tokenizer and the classifier, saves the checkpoint with float16-stored weights and
prints the dev accuracy of those saved weights reloaded in float32.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_albert.finetune import FinetuneConfig, finetune, predict  # noqa: E402

DEFAULT_DATA = REPO / "data" / "glue-sst2"
SANITY = [
    ("a gorgeous, witty, seductive movie", "positive"),
    ("a dull, tedious and painfully unfunny mess", "negative"),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="folder with train.tsv and dev.tsv")
    parser.add_argument("--out", type=Path, default=REPO / "examples" / "sst2-albert")
    for item in fields(FinetuneConfig):
        if item.type in ("int", "float"):
            kind = float if item.type == "float" else int
            parser.add_argument(f"--{item.name.replace('_', '-')}", type=kind, default=item.default)
    # One thread by default: a long run then leaves the other core to the people sharing the machine.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--multi-depth", action="store_true",
                        help="train the classifier after every layer call (for early-exit bundles)")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="continue from this checkpoint (e.g. examples/sst2-albert) instead of from scratch")
    args = parser.parse_args(argv)

    train, dev = args.data_dir / "train.tsv", args.data_dir / "dev.tsv"
    for path in (train, dev):
        if not path.is_file():
            parser.error(f"{path} is missing: pass --data-dir, the folder holding GLUE SST-2 train.tsv and dev.tsv")
    values = {item.name: getattr(args, item.name) for item in fields(FinetuneConfig) if hasattr(args, item.name)}
    values["init_from"] = str(args.init_from) if args.init_from else None
    config = FinetuneConfig(**values)

    started = time.perf_counter()
    result = finetune(train, args.out, dev, config, overwrite=True)
    wall = time.perf_counter() - started
    print(f"saved {result.out_dir}  parameters {result.num_parameters:,}  vocab {result.vocab_size}")
    print(f"dev accuracy before saving (fp32): {result.dev_accuracy_before_save:.4f}")
    print(f"dev accuracy {result.dev_accuracy:.4f} (float16-stored weights reloaded in float32, {len_dev(dev)} rows)")
    print(f"wall time {wall / 60:.1f} min")
    for entry in result.history:
        if "dev_accuracy_per_call" in entry:
            print(f"epoch {entry['epoch']} dev accuracy per layer call: "
                  + ", ".join(f"{acc:.4f}" for acc in entry["dev_accuracy_per_call"]))
    failures = 0
    for (text, expected), (label, prob) in zip(SANITY, predict(result.out_dir, [t for t, _ in SANITY])):
        failures += label != expected
        print(f"  {label:>8} {prob:.3f}  {text!r}  (expected {expected})")
    return 1 if failures else 0


def len_dev(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines()[1:] if line.strip())


if __name__ == "__main__":
    sys.exit(main())
