"""`edge-albert distill` and `edge-albert teacher-outputs`: any Hugging Face sequence classifier -> an ALBERT student.

The teacher (BERT, MiniLM, RoBERTa..., edge_albert/compress/teacher.py) and the student each keep
their own tokenizer: soft targets are per text. The teacher's logits on the transfer set (the
training rows plus `--augment` unlabelled copies) are computed once into a teacher-outputs file
(edge_albert/compress/teacher_outputs.py): `teacher-outputs` writes one for committing, and
`distill --teacher` keeps one in a cache beside the output keyed by the teacher's weights and
the texts, so a rerun or a second student reuses it. `distill --teacher-outputs FILE` trains
from such a file without the teacher. The student is an ALBERT checkpoint (`--student`) or one
built from scratch with finetune's tokenizer recipe; it trains on Trainer with compress's
distillation loss (soft targets from the rows, optionally at every depth for early exit),
resumably in OUT.partial/, and is saved as a normal checkpoint with `distillation.json`.

Order: every check (settings, output, teacher files and labels, the outputs file's labels,
teacher and texts digests, the student's labels and shape, the data) before any teacher or
student computation.
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np

from .. import finetune
from ..atomic import check_writable_output, exclusive_run, replacing_directory
from ..bundle import sha256_of_file
from ..data import Example, read_examples
from ..errors import CompressionError, EdgeAlbertError
from ..finetune import check_config, depth_accuracies
from ..hf.reference import load_reference_model
from ..training import EncodedDataset, accuracy_of, last_checkpoint, save_checkpoint
from .augment import AugmentConfig, mask_token_of
from .distill import TEACHER_LOGITS, make_soft_target_trainer
from .foreign_options import SAVE_DTYPES, DistilOptions, TransferOptions
from .prune import freeze_pruned_heads, pruned_heads_are_zero, pruned_heads_of
from .run import _prepare_staging, _versions
from .teacher import TeacherInfo, check_same_labels, inspect_teacher, load_teacher, read_model_config
from .teacher_outputs import FORMAT as OUTPUTS_FORMAT
from .teacher_outputs import TeacherOutputs, check_record, compute_outputs, load_outputs, read_record, texts_sha256, transfer_rows

RECORD_FILE = "distillation.json"
RECORD_FORMAT = "edge-albert distillation v1"
CACHE_DIR = ".teacher-outputs"  # beside the student's output: every student written there shares it


@dataclass
class DistilResult:
    out_dir: Path
    dev_accuracy: Optional[float]
    dev_accuracy_per_call: Optional[List[float]]
    teacher_dev_accuracy: Optional[float]
    parameters: int
    seconds: float
    teacher_outputs: Path
    teacher_outputs_cached: bool  # True when the outputs were read, not computed, by this run
    resumed_from: Optional[str]


# --------------------------------------------------------------------------- teacher outputs


def write_teacher_outputs(teacher_dir, train_path, out_file, options: TransferOptions = TransferOptions(),
                          overwrite: bool = False, log: Callable[[str], None] = print) -> TeacherOutputs:
    """The teacher's float16 logits on TRAIN (+ augmented copies) in OUT_FILE, the committable form; resumable."""
    _check_transfer(options)
    info = inspect_teacher(teacher_dir)
    check_same_labels(info.labels, options.labels, f"teacher {info.path}")
    out_file = Path(out_file)
    _check_output_file(out_file, overwrite)
    train = _read(train_path, options)
    model, tokenizer = load_teacher(info)
    rows, texts = _transfer(train, train_path, options, _mask(tokenizer))
    log(f"{len(train)} training rows + {len(rows) - len(train)} augmented = {len(rows)} texts for the teacher")
    with exclusive_run(out_file, error=CompressionError):
        outputs = compute_outputs(model, tokenizer, rows, out_file, _outputs_record(info, texts, options.labels),
                                  max_length=options.teacher_max_length, threads=options.threads,
                                  batch_size=options.teacher_batch_size, chunk_rows=options.chunk_rows, log=log)
    # on a dev file (no --augment) this is the teacher's dev accuracy, as run here (float16 logits)
    log(f"teacher accuracy on the {len(train)} labelled rows: {labelled_accuracy(outputs, train):.4f}")
    return outputs


def labelled_accuracy(outputs: TeacherOutputs, labelled: Sequence[Example]) -> float:
    """How often the teacher's stored logits pick the label of the labelled rows (the file's first rows)."""
    predicted = outputs.logits[:len(labelled)].argmax(-1)
    return float((predicted == np.array([row.label for row in labelled])).mean())


# --------------------------------------------------------------------------- distil


def distil(train_path, out_dir, *, teacher_dir=None, teacher_outputs=None, student_dir=None, dev_path=None,
           options: DistilOptions = DistilOptions(), cache_dir=None, overwrite: bool = False, restart: bool = False,
           log: Callable[[str], None] = print) -> DistilResult:
    """Distil a sequence classifier (`teacher_dir`, or its outputs file `teacher_outputs`) into an ALBERT student."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    transfer = options.transfer
    _check_options(options, teacher_dir, teacher_outputs, student_dir)
    check_writable_output(out_dir, overwrite=overwrite, replaceable=_not_a_checkpoint, error=CompressionError)
    info = inspect_teacher(teacher_dir) if teacher_dir is not None else None
    if info is not None:
        check_same_labels(info.labels, transfer.labels, f"teacher {info.path}")
    record = read_record(teacher_outputs) if teacher_outputs is not None else None
    if record is not None:
        check_record(record, teacher_outputs, labels=transfer.labels,
                     teacher_sha256=info.weights_sha256 if info is not None else None)
    if student_dir is not None:
        _check_student(Path(student_dir), transfer.labels, options)
    train, dev = _read(train_path, transfer), (_read(dev_path, transfer) if dev_path else [])
    teacher = None
    if record is not None:
        mask_token = record["texts"]["mask_token"]
    else:
        teacher = load_teacher(info)
        mask_token = _mask(teacher[1])
    rows, texts = _transfer(train, train_path, transfer, mask_token)
    if record is not None:
        check_record(record, teacher_outputs, labels=transfer.labels, texts=texts)
    run_record = {
        "teacher_sha256": info.weights_sha256 if info else record["teacher"]["weights_sha256"],
        "texts_sha256": texts["sha256"], "student": str(student_dir) if student_dir else None,
        "options": options.to_dict(from_scratch=student_dir is None),
        "dev": _file_record(dev_path) if dev_path else None,
    }
    with exclusive_run(out_dir, error=CompressionError):
        staging = out_dir.with_name(out_dir.name + ".partial")
        _prepare_staging(staging, run_record, restart, log)
        if record is not None:
            outputs, cached = load_outputs(teacher_outputs), True
            log(f"teacher outputs from {teacher_outputs} ({len(rows)} rows)")
        else:
            outputs, cached = _cached_outputs(teacher, info, rows, texts, transfer, cache_dir or out_dir.parent / CACHE_DIR, log)
        teacher_dev = _teacher_dev_accuracy(teacher, info, dev, dev_path, transfer,
                                            cache_dir or out_dir.parent / CACHE_DIR, log) if teacher and dev else None
        trained = _train_student(staging, rows, outputs, train, dev, student_dir, options, log)
        record_out = _record(run_record, info, outputs, trained, len(train), len(rows), dev_path, teacher_dev,
                             student_dir, options, started, train_path)
        (trained["directory"] / RECORD_FILE).write_text(json.dumps(record_out, indent=2) + "\n")
        with replacing_directory(out_dir, overwrite=overwrite, replaceable=_not_a_checkpoint, error=CompressionError) as target:
            for path in trained["directory"].iterdir():
                shutil.copyfile(path, target / path.name)
        shutil.rmtree(staging, ignore_errors=True)
    return DistilResult(out_dir=out_dir, dev_accuracy=trained["dev_accuracy"],
                        dev_accuracy_per_call=trained["dev_accuracy_per_call"], teacher_dev_accuracy=teacher_dev,
                        parameters=record_out["student"]["parameters"], seconds=record_out["seconds"],
                        teacher_outputs=outputs.path, teacher_outputs_cached=cached, resumed_from=trained["resumed_from"])


def cache_path(cache_dir, teacher_sha256: str, texts_digest: str, max_length: int) -> Path:
    """Where `distill --teacher` keeps the outputs of one teacher on one ordered set of texts."""
    return Path(cache_dir) / f"{teacher_sha256[:16]}-{texts_digest[:16]}-len{max_length}.safetensors"


# --------------------------------------------------------------------------- checks


def _check_transfer(options: TransferOptions) -> None:
    options.augment.check()
    for name in ("teacher_max_length", "teacher_batch_size", "chunk_rows", "threads"):
        value = getattr(options, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CompressionError(f"{{{name}}} must be an integer >= 1, not {value!r}", options=(name,))
    if options.augment_seed < 0:
        raise CompressionError("{augment_seed} must be 0 or more", options=("augment_seed",))


def _check_options(options: DistilOptions, teacher_dir, teacher_outputs, student_dir) -> None:
    """Settings that cannot run, refused before any file is read."""
    _check_transfer(options.transfer)
    if teacher_dir is None and teacher_outputs is None:
        raise CompressionError("distill needs {teacher} (a sequence classifier directory) or {teacher_outputs} "
                               "(a file teacher-outputs wrote)", options=("teacher", "teacher_outputs"))
    config = options.distill
    if not 0.0 <= config.alpha <= 1.0:
        raise CompressionError(f"{{alpha}} must be between 0 and 1, not {config.alpha}", options=("alpha",))
    if config.alpha <= 0:
        raise CompressionError("distill trains on the teacher's soft targets: {alpha} must be above 0 "
                               "(finetune trains on labels alone)", options=("alpha",))
    if config.hidden_weight:
        raise CompressionError("hidden-state matching needs a teacher of the student's width; distill matches logits only")
    if config.temperature <= 0:
        raise CompressionError(f"{{temperature}} must be above 0, not {config.temperature}", options=("temperature",))
    if config.epochs <= 0 or config.batch_size < 1 or config.learning_rate <= 0 or config.max_length < 3:
        raise CompressionError("{epochs}, {batch_size} and {learning_rate} must be above 0 and {max_length} at least 3",
                               options=("epochs", "batch_size", "learning_rate", "max_length"))
    if options.save_dtype not in SAVE_DTYPES:
        raise CompressionError(f"save_dtype must be one of {', '.join(SAVE_DTYPES)}, not {options.save_dtype!r}")
    if student_dir is None:
        try:
            check_config(options.scratch)
        except EdgeAlbertError as exc:
            raise CompressionError(str(exc).replace("finetune: ", "student shape: ")) from None
        if config.max_length > options.scratch.max_position_embeddings:
            raise CompressionError(f"{{max_length}} {config.max_length} exceeds the student's max_position_embeddings "
                                   f"{options.scratch.max_position_embeddings}", options=("max_length",))


def _check_student(student_dir: Path, labels: Sequence[str], options: DistilOptions) -> None:
    """An ALBERT sequence classifier with the data's labels (and one shared layer for --multi-depth)."""
    config = read_model_config(student_dir, "student", "pass an ALBERT checkpoint directory")
    if "AlbertForSequenceClassification" not in (config.get("architectures") or []):
        raise CompressionError(f"student {student_dir} is not an AlbertForSequenceClassification")
    id2label = config.get("id2label") or {}
    check_same_labels([str(id2label.get(str(i), id2label.get(i))) for i in range(len(id2label))], labels,
                      f"student {student_dir}")
    if options.multi_depth and (config.get("num_hidden_groups", 1) != 1 or config.get("inner_group_num", 1) != 1):
        raise CompressionError("{multi_depth} needs a student with one shared layer (num_hidden_groups = "
                               "inner_group_num = 1)", options=("multi_depth",))
    if options.distill.max_length > int(config.get("max_position_embeddings", 512)):
        raise CompressionError(f"{{max_length}} {options.distill.max_length} exceeds the student's "
                               f"max_position_embeddings {config.get('max_position_embeddings')}", options=("max_length",))


def _check_output_file(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise CompressionError(f"{path} is a directory; name a file (e.g. teacher-outputs.safetensors)")
    if path.exists() and not overwrite:
        raise CompressionError(f"{path} already exists; pass {{overwrite}} to replace it", options=("overwrite",))
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise CompressionError(f"cannot write {path}: {parent} is not a directory")


# --------------------------------------------------------------------------- steps


def _read(path, options: TransferOptions) -> List[Example]:
    return read_examples(path, text_column=options.text_column, label_column=options.label_column,
                         pair_column=options.pair_column, labels=options.labels)


def _mask(tokenizer) -> str:
    """The word augmentation masks with: the teacher's own mask token, so the teacher reads a real mask."""
    return mask_token_of(tokenizer)


def _transfer(train: List[Example], train_path, options: TransferOptions, mask_token: str):
    """(transfer rows, the texts record that identifies them)."""
    rows = transfer_rows(train, options.augment, mask_token, options.augment_seed)
    texts = {"sha256": texts_sha256(rows), "rows": len(rows), "labelled_rows": len(train),
             "train": _file_record(train_path),
             "columns": {"text": options.text_column, "pair": options.pair_column, "label": options.label_column},
             "augment": options.augment.to_dict(), "augment_seed": options.augment_seed, "mask_token": mask_token}
    return rows, texts


def _outputs_record(info: TeacherInfo, texts: dict, labels) -> dict:
    return {"format": OUTPUTS_FORMAT, "labels": list(labels), "teacher": info.to_dict(), "texts": texts}


def _cached_outputs(teacher, info: TeacherInfo, rows, texts: dict, transfer: TransferOptions, cache_dir: Path, log):
    """(outputs, True) from the cache when there, else computed into it (resuming a partial one)."""
    path = cache_path(cache_dir, info.weights_sha256, texts["sha256"], transfer.teacher_max_length)
    if path.is_file():
        outputs = load_outputs(path)
        check_record(outputs.record, path, labels=transfer.labels, texts=texts, teacher_sha256=info.weights_sha256)
        log(f"teacher outputs from the cache {path} ({len(rows)} rows)")
        return outputs, True
    log(f"computing the teacher's outputs on {len(rows)} texts into {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    model, tokenizer = teacher
    with exclusive_run(path, error=CompressionError):
        outputs = compute_outputs(model, tokenizer, rows, path, _outputs_record(info, texts, transfer.labels),
                                  max_length=transfer.teacher_max_length, threads=transfer.threads,
                                  batch_size=transfer.teacher_batch_size, chunk_rows=transfer.chunk_rows, log=log)
    return outputs, False


def _teacher_dev_accuracy(teacher, info: TeacherInfo, dev: List[Example], dev_path, transfer: TransferOptions,
                          cache_dir: Path, log) -> float:
    """The teacher's own dev accuracy, from its (cached) outputs on the dev texts."""
    plain = replace(transfer, augment=AugmentConfig())
    rows, texts = _transfer(dev, dev_path, plain, _mask(teacher[1]))
    outputs, _ = _cached_outputs(teacher, info, rows, texts, plain, cache_dir, lambda line: None)
    return labelled_accuracy(outputs, dev)


def _train_student(staging: Path, rows: List[Example], outputs: TeacherOutputs, train: List[Example],
                   dev: List[Example], student_dir, options: DistilOptions, log) -> dict:
    """Student tokenizer and model (from --student or from scratch), Trainer in staging/trainer,
    the saved student in staging/student, reloaded and scored on dev."""
    import torch

    config = options.distill
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    tokenizer, model, tokenizer_dir = _student(staging, train, student_dir, options, log)
    train_set = EncodedDataset(tokenizer, rows, config.max_length)
    for row, logits in zip(train_set.rows, outputs.logits.astype("float32").tolist()):
        row[TEACHER_LOGITS] = logits
    dev_set = EncodedDataset(tokenizer, dev, config.max_length) if dev else None
    log(f"{len(train)} labelled + {len(rows) - len(train)} unlabelled training rows, {len(dev)} dev rows")
    trainer_dir = staging / "trainer"
    trainer = make_soft_target_trainer(model, train_set, dev_set, tokenizer, trainer_dir, config,
                                       multi_depth=options.multi_depth, log=log)
    checkpoint = last_checkpoint(trainer_dir)
    if checkpoint:
        log(f"resuming from {checkpoint}")
    trainer.train(resume_from_checkpoint=checkpoint)
    final = staging / "student"
    shutil.rmtree(final, ignore_errors=True)
    final.mkdir(parents=True)
    save_checkpoint(trainer.model, final, options.save_dtype)
    for path in tokenizer_dir.iterdir():
        if path.is_file():
            shutil.copyfile(path, final / path.name)
    reloaded = load_reference_model(final)
    if not pruned_heads_are_zero(reloaded):
        raise RuntimeError("a pruned head of the student is no longer zero after training")  # a bug, not bad input
    per_call = None
    if dev_set is not None and options.multi_depth:
        from transformers import DataCollatorWithPadding

        per_call = depth_accuracies(reloaded, dev_set, DataCollatorWithPadding(tokenizer), config.batch_size * 2)
    return {"directory": final, "parameters": sum(p.numel() for p in reloaded.parameters()),
            "dev_accuracy": accuracy_of(reloaded, dev_set, tokenizer) if dev_set is not None else None,
            "dev_accuracy_per_call": per_call, "log_history": trainer.state.log_history, "resumed_from": checkpoint}


def _student(staging: Path, train: List[Example], student_dir, options: DistilOptions, log):
    """(tokenizer, float32 model, directory of the tokenizer files): --student's, or a new one as finetune builds it."""
    tokenizer_dir = staging / "tokenizer"
    if student_dir is not None:
        tokenizer, model = finetune.load_initial_classifier(student_dir, options.transfer.labels)
        finetune.copy_tokenizer_files(Path(student_dir), tokenizer_dir)
        pruned = pruned_heads_of(model.config)
        if pruned:  # a compressed student: its removed heads stay exactly zero, so the converter still drops them
            freeze_pruned_heads(model)
        log(f"student from {student_dir} ({sum(p.numel() for p in model.parameters()):,} parameters"
            + (f", heads {pruned} pruned and kept at zero" if pruned else "") + ")")
        return tokenizer, model, tokenizer_dir
    scratch = options.scratch
    texts = finetune.unique_in_order([e.text for e in train] + [e.text_pair for e in train if e.text_pair])
    resuming = (tokenizer_dir / "spiece.model").is_file()
    tokenizer, _ = finetune.train_or_resume_tokenizer(tokenizer_dir, resuming, texts, scratch, f"{len(train)} labelled rows", log)
    _torch_seed(scratch.seed)
    model = finetune.new_classifier(scratch, len(tokenizer), options.transfer.labels)
    log(f"student from scratch ({sum(p.numel() for p in model.parameters()):,} parameters)")
    return tokenizer, model, tokenizer_dir


def _torch_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def _record(run_record: dict, info: Optional[TeacherInfo], outputs: TeacherOutputs, trained: dict, labelled: int,
            rows: int, dev_path, teacher_dev: Optional[float], student_dir, options: DistilOptions, started: float,
            train_path) -> dict:
    """distillation.json: the recipe, the teacher, its outputs file, the student as saved, data, training, time."""
    teacher = info.to_dict() if info is not None else outputs.record["teacher"]
    return {
        "format": RECORD_FORMAT,
        "teacher": {**teacher, "dev_accuracy": teacher_dev},
        "teacher_outputs": {"path": str(outputs.path), "sha256": outputs.file_sha256,
                            "logits_sha256": outputs.record["logits_sha256"], "texts": outputs.record["texts"],
                            "max_length": outputs.record["max_length"]},
        "student": {"init": str(student_dir) if student_dir else "scratch", "parameters": trained["parameters"],
                    "weights_dtype": options.save_dtype, "dev_accuracy": trained["dev_accuracy"],
                    "dev_accuracy_per_call": trained["dev_accuracy_per_call"],
                    "dev_accuracy_of": "the saved weights, reloaded in float32"},
        "options": run_record["options"],
        "data": {"train": _file_record(train_path), "dev": run_record["dev"], "labelled_rows": labelled,
                 "transfer_rows": rows},
        "training": {"log_history": trained["log_history"], "resumed_from": trained["resumed_from"]},
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "versions": _versions(),
    }


def _file_record(path) -> dict:
    path = Path(path)
    return {"path": str(path), "sha256": sha256_of_file(path)}


def _not_a_checkpoint(path: Path) -> Optional[str]:
    """--overwrite replaces a checkpoint directory, never some other directory named by mistake."""
    return None if (path / "config.json").is_file() else "it is not a checkpoint directory (no config.json)"
