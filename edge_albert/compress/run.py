"""`edge-albert compress`: teacher checkpoint -> pruned, distilled student checkpoint.

Order: validate the teacher, the plan and the data (one error line, nothing trained); then in a
staging directory beside the output (OUT.partial/): measure importance, build the pruned
student (saved there as student-init/), distil on Trainer (checkpoints in trainer/), save the
student with the teacher's tokenizer and compression.json, reload it with transformers and
score it on dev, and swap it in as OUT (edge_albert/atomic.py). A rerun with the same settings resumes from the staging
directory's last Trainer checkpoint; different settings are refused until --restart.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from ..atomic import check_writable_output, replacing_directory
from ..bundle import sha256_of_file
from ..converters.checkpoint import PRUNED_HEADS_KEY, load_checkpoint
from ..errors import CompressionError
from ..data import read_examples
from .distill import DistillConfig
from .importance import IMPORTANCE_METHOD
from .plan import CompressionPlan, compute_ratio, make_plan

PROVENANCE_FILE = "compression.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "spiece.model")
INITS = ("teacher", "random")


@dataclass(frozen=True)
class CompressOptions:
    layers: Optional[int] = None
    heads: Optional[int] = None
    remove_heads: Optional[int] = None
    ffn: Optional[int] = None
    init: str = "teacher"  # "random": the same shape trained from scratch (ablation)
    importance_examples: int = 2048
    max_train_examples: Optional[int] = None  # a seeded random subset of the training rows
    text_column: str = "sentence"
    label_column: str = "label"
    pair_column: Optional[str] = None
    distill: DistillConfig = field(default_factory=DistillConfig)


@dataclass
class CompressResult:
    out_dir: Path
    plan: CompressionPlan
    removed_heads: list
    dev_accuracy: Optional[float]
    teacher_dev_accuracy: Optional[float]
    parameters: int
    seconds: float
    resumed_from: Optional[str]


def compress(teacher_dir, train_path, out_dir, dev_path=None, options: CompressOptions = CompressOptions(),
             overwrite: bool = False, restart: bool = False, log: Callable[[str], None] = print) -> CompressResult:
    """Compress `teacher_dir` into a student at `out_dir`; see the module docstring for the steps."""
    started = time.perf_counter()
    teacher_dir, out_dir = Path(teacher_dir), Path(out_dir)
    if options.init not in INITS:
        raise CompressionError(f"init must be one of {', '.join(INITS)}, not {options.init!r}")
    check_writable_output(out_dir, overwrite=overwrite, replaceable=_not_a_checkpoint, error=CompressionError)
    teacher_ckpt = load_checkpoint(teacher_dir)
    if teacher_ckpt.architecture != "AlbertForSequenceClassification":
        raise CompressionError(
            f"{teacher_dir} is an {teacher_ckpt.architecture}; compress takes a sequence classifier "
            "(AlbertForSequenceClassification)"
        )
    if teacher_ckpt.problem_type == "multi_label_classification":
        raise CompressionError(f"{teacher_dir} is a multi-label classifier; compress distils single-label classifiers")
    raw_config = teacher_ckpt.config.raw
    already = list(teacher_ckpt.config.pruned_heads)
    plan = make_plan(raw_config, options.layers, options.heads, options.remove_heads, options.ffn, len(already))
    read = dict(text_column=options.text_column, label_column=options.label_column,
                pair_column=options.pair_column, labels=teacher_ckpt.labels)
    train = read_examples(train_path, **read)
    dev = read_examples(dev_path, **read) if dev_path else []
    if options.max_train_examples is not None:
        if options.max_train_examples < 1:
            raise CompressionError("max_train_examples must be at least 1")
        if options.max_train_examples < len(train):
            train = random.Random(options.distill.seed).sample(train, options.max_train_examples)
    run_record = {
        "teacher": {"path": str(teacher_dir), "weights_sha256": teacher_ckpt.weights_sha256},
        "plan": plan.to_dict(),
        "options": {**asdict(options), "distill": options.distill.to_dict()},
        "data": {"train": _file_record(train_path), **({"dev": _file_record(dev_path)} if dev_path else {})},
    }
    staging = out_dir.with_name(out_dir.name + ".partial")
    _prepare_staging(staging, run_record, restart, log)
    log(f"plan: {plan.num_hidden_layers} calls (teacher {raw_config['num_hidden_layers']}), "
        f"{plan.heads} heads (teacher {raw_config['num_attention_heads'] - len(already)}), FFN {plan.intermediate_size} "
        f"(teacher {raw_config['intermediate_size']}); compute at seq 128: "
        f"{compute_ratio(raw_config, plan)['ratio']:.2f}x the teacher's")

    import torch
    from transformers import AlbertForSequenceClassification, AutoTokenizer

    from ..training import EncodedDataset, accuracy_of, batches, last_checkpoint
    from .distill import make_trainer
    from .importance import measure_importance
    from .prune import build_student, choose, freeze_pruned_heads, pruned_heads_are_zero, pruned_heads_of, zero_pruned_heads

    torch.set_num_threads(options.distill.threads)
    torch.manual_seed(options.distill.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(teacher_dir))
    teacher = AlbertForSequenceClassification.from_pretrained(str(teacher_dir), dtype=torch.float32).eval()
    train_set = EncodedDataset(tokenizer, train, options.distill.max_length)
    dev_set = EncodedDataset(tokenizer, dev, options.distill.max_length) if dev else None
    log(f"{len(train_set)} training rows, {len(dev_set) if dev_set else 0} dev rows")

    init_dir = staging / "student-init"
    importance_path = staging / "importance.json"
    if not (init_dir / "config.json").is_file():
        from transformers import DataCollatorWithPadding

        probe = AlbertForSequenceClassification.from_pretrained(str(teacher_dir), dtype=torch.float32)
        probe.config.num_hidden_layers = plan.num_hidden_layers  # importance of the network the student will be
        rows = random.Random(options.distill.seed + 1).sample(range(len(train_set)), min(options.importance_examples, len(train_set)))
        subset = EncodedDataset.__new__(EncodedDataset)
        subset.rows = [train_set.rows[i] for i in rows]
        log(f"measuring head and neuron importance on {len(subset)} training rows")
        importance = measure_importance(probe, batches(subset, DataCollatorWithPadding(tokenizer), 32))
        removed, kept = choose(importance, plan, already)
        student = build_student(teacher, plan, removed, kept)
        if options.init == "random":
            student = _reinitialised(student)
        importance_path.write_text(json.dumps({**importance.to_dict(), "removed_heads": removed,
                                               "kept_neurons": kept}, indent=1) + "\n")
        tmp = staging / "student-init.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        student.save_pretrained(str(tmp))
        os.rename(tmp, init_dir)
    student = AlbertForSequenceClassification.from_pretrained(str(init_dir), dtype=torch.float32)
    importance_record = json.loads(importance_path.read_text())
    log(f"removed heads {pruned_heads_of(student.config) or 'none'}; "
        f"{sum(p.numel() for p in student.parameters()):,} parameters")
    freeze_pruned_heads(student)

    trainer_dir = staging / "trainer"
    trainer = make_trainer(student, teacher, train_set, dev_set, tokenizer, trainer_dir, options.distill, log)
    checkpoint = last_checkpoint(trainer_dir)
    if checkpoint:
        log(f"resuming from {checkpoint}")
    trainer.train(resume_from_checkpoint=checkpoint)
    student = trainer.model
    if not pruned_heads_are_zero(student):  # the gradient masks guarantee it; a broken invariant must not ship
        raise CompressionError("pruned heads drifted from zero during training")
    zero_pruned_heads(student)

    final = staging / "student"
    shutil.rmtree(final, ignore_errors=True)
    student.save_pretrained(str(final))
    for name in TOKENIZER_FILES:
        if (teacher_dir / name).is_file():
            shutil.copyfile(teacher_dir / name, final / name)
    reloaded = AlbertForSequenceClassification.from_pretrained(str(final), dtype=torch.float32)
    dev_accuracy = accuracy_of(reloaded, dev_set, tokenizer) if dev_set else None
    teacher_accuracy = accuracy_of(teacher, dev_set, tokenizer) if dev_set else None
    seconds = time.perf_counter() - started
    provenance = {
        "format": "edge-albert compression v1",
        **run_record,
        "teacher": {**run_record["teacher"], "config": {k: raw_config.get(k) for k in (
            "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_size", "embedding_size")},
            "pruned_heads": already, "dev_accuracy": teacher_accuracy},
        "student": {"removed_heads": pruned_heads_of(reloaded.config),
                    "representation": f"config.json {PRUNED_HEADS_KEY}: heads zeroed in query/key/value and "
                                      "attention.dense, sliced out by edge-albert convert",
                    "parameters": sum(p.numel() for p in reloaded.parameters()),
                    "parameters_without_pruned_heads": _effective_parameters(reloaded),
                    "dev_accuracy": dev_accuracy, "dev_examples": len(dev)},
        "compute_ratio": compute_ratio(raw_config, plan),
        "importance": {"method": IMPORTANCE_METHOD, **{k: v for k, v in importance_record.items() if k != "kept_neurons"}},
        "training": {"train_rows_used": len(train), "log_history": trainer.state.log_history,
                     "resumed_from": checkpoint},
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "versions": _versions(),
    }
    (final / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
    with replacing_directory(out_dir, overwrite=overwrite, replaceable=_not_a_checkpoint, error=CompressionError) as target:
        for path in final.iterdir():
            shutil.copyfile(path, target / path.name)
    shutil.rmtree(staging, ignore_errors=True)
    return CompressResult(out_dir=out_dir, plan=plan, removed_heads=pruned_heads_of(reloaded.config),
                          dev_accuracy=dev_accuracy, teacher_dev_accuracy=teacher_accuracy,
                          parameters=provenance["student"]["parameters_without_pruned_heads"],
                          seconds=seconds, resumed_from=checkpoint)


def _file_record(path) -> dict:
    path = Path(path)
    return {"path": str(path), "sha256": sha256_of_file(path), "bytes": path.stat().st_size}


def _prepare_staging(staging: Path, record: dict, restart: bool, log) -> None:
    """Create the staging dir, or reuse one left by an interrupted run with the same settings."""
    run_file = staging / "run.json"
    if staging.exists() and restart:
        shutil.rmtree(staging)
    if staging.exists():
        if not run_file.is_file():
            raise CompressionError(f"{staging} exists but is not a compress staging directory; move it away")
        previous = json.loads(run_file.read_text())
        if previous != json.loads(json.dumps(record)):
            differs = sorted(k for k in set(previous) | set(record) if previous.get(k) != json.loads(json.dumps(record)).get(k))
            raise CompressionError(
                f"{staging} holds an interrupted run with different settings ({', '.join(differs)} differ); "
                "rerun with the same settings to resume, or pass {restart} to discard it", options=("restart",)
            )
        log(f"resuming the interrupted run in {staging}")
        return
    staging.mkdir(parents=True)
    run_file.write_text(json.dumps(record, indent=2) + "\n")


def _not_a_checkpoint(path: Path) -> Optional[str]:
    """--overwrite replaces a checkpoint directory, never some other directory named by mistake."""
    return None if (path / "config.json").is_file() else "it is not a checkpoint directory (no config.json)"


def _reinitialised(student):
    """The same shape and pruned heads with fresh random weights (the from-scratch ablation);
    the word embeddings stay the teacher's vocabulary size, randomly initialised too."""
    from transformers import AlbertForSequenceClassification

    from .prune import zero_pruned_heads

    fresh = AlbertForSequenceClassification(student.config)
    zero_pruned_heads(fresh)
    return fresh


def _effective_parameters(model) -> int:
    from .prune import head_masks

    total = sum(p.numel() for p in model.parameters())
    return int(total - sum(int((1 - mask).sum()) for mask in head_masks(model).values()))


def _versions() -> dict:
    import platform

    import torch
    import transformers

    versions = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}
    try:
        import accelerate

        versions["accelerate"] = accelerate.__version__
    except ImportError:
        pass
    return versions
