"""`edge-albert compress`: teacher checkpoint -> pruned, distilled student checkpoint.

Order: validate the teacher, the plan and the data (one error line, nothing trained); then in a
staging directory beside the output (OUT.partial/): measure importance, build the pruned
student (saved there as student-init/), distil on Trainer (checkpoints in trainer/), save the
student in the teacher's storage dtype (float16 for a float16 teacher) with the teacher's tokenizer
and compression.json, reload the saved file with transformers and score it on dev, and swap it in as OUT (edge_albert/atomic.py). A rerun with the same settings resumes from the staging
directory's last Trainer checkpoint; different settings are refused until --restart.
"""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

from ..atomic import check_writable_output, exclusive_run, refuse_overlap, replacing_directory
from ..bundle import sha256_of_file
from ..data import read_examples
from ..errors import CompressionError
from ..hf.checkpoint import PRUNED_HEADS_KEY, TOKENIZER_FILES, load_checkpoint
from ..hf.reference import load_reference_model
from ..hub import resolve_checkpoint
from ..training import EncodedDataset, accuracy_of, batches, last_checkpoint, save_checkpoint, stored_float_dtype
from .augment import NOT_IMPLEMENTED, augment_examples, mask_token_of
from .distill import make_trainer
from .importance import IMPORTANCE_METHOD, measure_importance
from .options import CompressOptions
from .plan import CompressionPlan, choose_plan, compute_ratio
from .prune import (build_student, choose, freeze_pruned_heads, head_masks, pruned_heads_are_zero, pruned_heads_of,
                    zero_pruned_heads)

PROVENANCE_FILE = "compression.json"


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
    options.check()
    refuse_overlap(out_dir, {"the teacher": teacher_dir, "the training file": train_path, "the dev file": dev_path},
                   error=CompressionError)
    check_writable_output(out_dir, overwrite=overwrite, replaceable=_not_a_checkpoint, error=CompressionError)
    teacher_dir = resolve_checkpoint(teacher_dir)  # a checkpoint directory or a Hugging Face model id
    teacher_ckpt = _classifier_teacher(teacher_dir)
    raw_config = teacher_ckpt.config.raw
    already = list(teacher_ckpt.config.pruned_heads)
    plan = choose_plan(raw_config, options.layers, options.heads, options.remove_heads, options.ffn,
                       options.target_speedup, len(already))
    train, dev = _read_rows(train_path, dev_path, options, teacher_ckpt.labels)
    run_record = {
        "teacher": {"path": str(teacher_dir), "weights_sha256": teacher_ckpt.weights_sha256},
        "plan": plan.to_dict(),
        "options": {**asdict(options), "distill": options.distill.to_dict()},
        "data": {"train": _file_record(train_path), **({"dev": _file_record(dev_path)} if dev_path else {})},
    }
    with exclusive_run(out_dir, error=CompressionError):  # a second run would share OUT.partial/
        staging = out_dir.with_name(out_dir.name + ".partial")
        _prepare_staging(staging, run_record, restart, log)
        target = f" for a {options.target_speedup:g}x compute target" if options.target_speedup else ""
        log(f"plan{target}: {plan.num_hidden_layers} calls (teacher {raw_config['num_hidden_layers']}), "
            f"{plan.heads} heads (teacher {raw_config['num_attention_heads'] - len(already)}), FFN {plan.intermediate_size} "
            f"(teacher {raw_config['intermediate_size']}); compute at seq 128: "
            f"{compute_ratio(raw_config, plan)['ratio']:.2f}x the teacher's")
        trained = _train_student(teacher_dir, staging, plan, already, train, dev, options, log)
        provenance = _provenance(run_record, raw_config, already, plan, trained, len(train), len(dev), started)
        (trained.directory / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
        with replacing_directory(out_dir, overwrite=overwrite, replaceable=_not_a_checkpoint, error=CompressionError) as target:
            for path in trained.directory.iterdir():
                shutil.copyfile(path, target / path.name)
        shutil.rmtree(staging, ignore_errors=True)
        return CompressResult(out_dir=out_dir, plan=plan, removed_heads=provenance["student"]["removed_heads"],
                              dev_accuracy=trained.dev_accuracy, teacher_dev_accuracy=trained.teacher_dev_accuracy,
                              parameters=provenance["student"]["parameters_without_pruned_heads"],
                              seconds=provenance["seconds"], resumed_from=trained.resumed_from)


@dataclass
class _Trained:
    """What training left behind: the saved student (reloaded from its files) and its record."""
    directory: Path
    model: object
    dev_accuracy: Optional[float]
    teacher_dev_accuracy: Optional[float]
    importance: dict
    augmentation: dict
    distillation_rows: int
    saved_dtype: str
    log_history: list
    resumed_from: Optional[str]


def _classifier_teacher(teacher_dir: Path):
    """The teacher's checkpoint, if it is a single-label sequence classifier (what compress distils)."""
    teacher_ckpt = load_checkpoint(teacher_dir)
    if teacher_ckpt.architecture != "AlbertForSequenceClassification":
        raise CompressionError(
            f"{teacher_dir} is an {teacher_ckpt.architecture}; compress takes a sequence classifier "
            "(AlbertForSequenceClassification)"
        )
    if teacher_ckpt.problem_type == "multi_label_classification":
        raise CompressionError(f"{teacher_dir} is a multi-label classifier; compress distils single-label classifiers")
    return teacher_ckpt


def _read_rows(train_path, dev_path, options: CompressOptions, labels) -> tuple:
    """Training rows (a seeded random subset when max_train_examples is below their number) and dev rows."""
    read = dict(text_column=options.text_column, label_column=options.label_column,
                pair_column=options.pair_column, labels=labels)
    train = read_examples(train_path, **read)
    dev = read_examples(dev_path, **read) if dev_path else []
    if options.max_train_examples is not None and options.max_train_examples < len(train):
        train = random.Random(options.distill.seed).sample(train, options.max_train_examples)
    return train, dev


def _train_student(teacher_dir: Path, staging: Path, plan: CompressionPlan, already: list, train, dev,
                   options: CompressOptions, log) -> _Trained:
    """Prune, distil, save in staging/student/ (in the teacher's storage dtype), reload from the
    files and score on dev, so the recorded accuracy is the saved file's."""
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(options.distill.threads)
    torch.manual_seed(options.distill.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(teacher_dir))
    teacher = load_reference_model(teacher_dir)  # float32, eval mode
    train_set = EncodedDataset(tokenizer, train, options.distill.max_length)
    dev_set = EncodedDataset(tokenizer, dev, options.distill.max_length) if dev else None
    log(f"{len(train_set)} training rows, {len(dev_set) if dev_set else 0} dev rows")
    distill_set, augmentation = _with_augmented_rows(train, train_set, tokenizer, options)
    student, importance = _initial_student(teacher_dir, teacher, staging, train_set, tokenizer, plan, already, options, log)
    trainer, checkpoint = _distil(student, teacher, distill_set, dev_set, tokenizer, staging / "trainer", options, log)
    final = staging / "student"
    save_dtype = stored_float_dtype(teacher_dir)  # the teacher's storage: a float16 teacher gets a float16 student
    _save_student(trainer.model, final, teacher_dir, save_dtype)
    reloaded = load_reference_model(final)
    return _Trained(
        directory=final, model=reloaded,
        dev_accuracy=accuracy_of(reloaded, dev_set, tokenizer) if dev_set else None,
        teacher_dev_accuracy=accuracy_of(teacher, dev_set, tokenizer) if dev_set else None,
        importance=importance, augmentation=augmentation, distillation_rows=len(distill_set), saved_dtype=save_dtype,
        log_history=trainer.state.log_history, resumed_from=checkpoint,
    )


def _initial_student(teacher_dir: Path, teacher, staging: Path, train_set, tokenizer, plan: CompressionPlan,
                     already: list, options: CompressOptions, log):
    """The pruned student before training and its importance record, made once per staging dir
    (staging/student-init/ and importance.json; a resumed run reads them back)."""
    import torch
    from transformers import AlbertForSequenceClassification

    init_dir = staging / "student-init"
    importance_path = staging / "importance.json"
    if not (init_dir / "config.json").is_file():
        student, record = _pruned_student(teacher_dir, teacher, train_set, tokenizer, plan, already, options, log)
        importance_path.write_text(json.dumps(record, indent=1) + "\n")
        tmp = staging / "student-init.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        student.save_pretrained(str(tmp))
        os.rename(tmp, init_dir)
    student = AlbertForSequenceClassification.from_pretrained(str(init_dir), dtype=torch.float32)
    log(f"removed heads {pruned_heads_of(student.config) or 'none'}; "
        f"{sum(p.numel() for p in student.parameters()):,} parameters")
    freeze_pruned_heads(student)
    return student, json.loads(importance_path.read_text())


def _pruned_student(teacher_dir: Path, teacher, train_set, tokenizer, plan: CompressionPlan, already: list,
                    options: CompressOptions, log):
    """Measure importance on a seeded sample of the labelled rows and prune the teacher by it."""
    import torch
    from transformers import AlbertForSequenceClassification, DataCollatorWithPadding

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
    return student, {**importance.to_dict(), "removed_heads": removed, "kept_neurons": kept}


def _distil(student, teacher, distill_set, dev_set, tokenizer, trainer_dir: Path, options: CompressOptions, log):
    """Train on Trainer, resuming from its last checkpoint in `trainer_dir`; the pruned heads must stay zero."""
    trainer = make_trainer(student, teacher, distill_set, dev_set, tokenizer, trainer_dir, options.distill, log)
    checkpoint = last_checkpoint(trainer_dir)
    if checkpoint:
        log(f"resuming from {checkpoint}")
    trainer.train(resume_from_checkpoint=checkpoint)
    if not pruned_heads_are_zero(trainer.model):  # the gradient masks guarantee it; a broken invariant must not ship
        raise CompressionError("pruned heads drifted from zero during training")
    zero_pruned_heads(trainer.model)
    return trainer, checkpoint


def _save_student(student, final: Path, teacher_dir: Path, save_dtype: str) -> None:
    """The student's weights in `save_dtype` and the teacher's tokenizer files in `final` (replaced if there)."""
    shutil.rmtree(final, ignore_errors=True)
    final.mkdir(parents=True)
    save_checkpoint(student, final, save_dtype)
    for name in TOKENIZER_FILES:
        if (teacher_dir / name).is_file():
            shutil.copyfile(teacher_dir / name, final / name)


def _provenance(run_record: dict, raw_config: dict, already: list, plan: CompressionPlan, trained: _Trained,
                train_rows: int, dev_rows: int, started: float) -> dict:
    """compression.json: the settings, the teacher, the student as saved, importance, data and training."""
    reloaded = trained.model
    return {
        "format": "edge-albert compression v1",
        **run_record,
        "teacher": {**run_record["teacher"], "config": {k: raw_config.get(k) for k in (
            "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_size", "embedding_size")},
            "pruned_heads": already, "dev_accuracy": trained.teacher_dev_accuracy},
        "student": {"removed_heads": pruned_heads_of(reloaded.config),
                    "representation": f"config.json {PRUNED_HEADS_KEY}: heads zeroed in query/key/value and "
                                      "attention.dense, sliced out by edge-albert convert",
                    "parameters": sum(p.numel() for p in reloaded.parameters()),
                    "parameters_without_pruned_heads": _effective_parameters(reloaded),
                    "weights_dtype": trained.saved_dtype,
                    "dev_accuracy": trained.dev_accuracy, "dev_examples": dev_rows,
                    "dev_accuracy_of": "the saved weights, reloaded in float32"},
        "compute_ratio": compute_ratio(raw_config, plan),
        "importance": {"method": IMPORTANCE_METHOD, **{k: v for k, v in trained.importance.items() if k != "kept_neurons"}},
        "augmentation": trained.augmentation,
        "training": {"train_rows_used": train_rows, "distillation_rows": trained.distillation_rows,
                     "log_history": trained.log_history, "resumed_from": trained.resumed_from},
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "versions": _versions(),
    }


def _with_augmented_rows(train, train_set, tokenizer, options: CompressOptions):
    """The distillation rows: the real ones, then options.augment.copies unlabelled copies of each
    (importance is measured on the real, labelled rows only), and what to record about them."""
    config = options.augment
    if not config.copies:
        return train_set, {**config.to_dict(), "rows_added": 0}
    mask_token = mask_token_of(tokenizer)
    augmented = augment_examples(train, config, mask_token, seed=options.distill.seed)
    combined = EncodedDataset.__new__(EncodedDataset)
    combined.rows = train_set.rows + EncodedDataset(tokenizer, augmented, options.distill.max_length).rows
    sources = [example for example in train for _ in range(config.copies)]
    unchanged = sum(a.text == s.text and a.text_pair == s.text_pair for a, s in zip(augmented, sources))
    record = {**config.to_dict(), "rows_added": len(augmented), "identical_to_their_row": unchanged, "mask_token": mask_token,
              "method": "Tang et al. 2019: per-word masking (p_mask), then n-gram sampling (p_ngram, n in 1..5); "
                        "trained on the teacher's soft targets only",
              "not_implemented": NOT_IMPLEMENTED}
    return combined, record


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
        try:
            previous = json.loads(run_file.read_text(encoding="utf-8"))
            if not isinstance(previous, dict):
                raise ValueError(f"a JSON {type(previous).__name__}, not the run's settings")
        except (OSError, ValueError, RecursionError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CompressionError(f"{run_file} cannot be read ({reason}); pass {{restart}} to discard the "
                                   "interrupted run", options=("restart",)) from None
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

    fresh = AlbertForSequenceClassification(student.config)
    zero_pruned_heads(fresh)
    return fresh


def _effective_parameters(model) -> int:
    total = sum(p.numel() for p in model.parameters())
    return int(total - sum(int((1 - mask).sum()) for mask in head_masks(model).values()))


def _versions() -> dict:
    import torch
    import transformers

    versions = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}
    try:
        import accelerate

        versions["accelerate"] = accelerate.__version__
    except ImportError:
        pass
    return versions
