"""Fine-tune a small ALBERT text classifier from scratch, tokenizer included.

No pretrained ALBERT weights can be downloaded where this project is built, so the example
model the README converts is trained here: a SentencePiece unigram model in ALBERT's layout
(ids 0..4 = <pad>, <unk>, [CLS], [SEP], [MASK]) learnt on the training text, and a small
`AlbertForSequenceClassification` with ALBERT's standard cross-layer sharing. The result is an
ordinary Hugging Face checkpoint directory that the converter reads like any other.

Training runs on transformers' Trainer with the recipe in edge_albert/training.py (shared with
compress's distillation): evaluation on the dev file each epoch, and a checkpoint each epoch in
OUT.partial/ (work_dir), which a rerun with the same settings and data resumes from.

torch, transformers and sentencepiece are imported inside the functions that need them, so
`import edge_albert` stays light on a device.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from .atomic import check_writable_output, exclusive_run, replacing_directory
from .bundle import sha256_of_file
from .data import DEFAULT_LABEL_COLUMN, DEFAULT_LABELS, DEFAULT_TEXT_COLUMN, Example, read_examples
from .errors import CheckpointError, EdgeAlbertError
from .finetune_config import FinetuneConfig
from .hf.checkpoint import SUPPORTED_ACTIVATIONS, TOKENIZER_FILES, load_checkpoint
from .hf.early_exit import multi_depth_loss, per_call_logits
from .hf.quiet import quiet_transformers, require_workstation
from .hf.reference import load_reference_model, load_reference_runner
from .hf.weights import POOLER
from .hub import resolve_checkpoint
from .tokenizer_training import (  # noqa: F401 (re-exported)
    CLS_ID,
    MASK_ID,
    PAD_ID,
    SEP_ID,
    SPECIAL_PIECES,
    build_tokenizer,
    check_tokenizer,
    processor,
    train_sentencepiece,
)
from .training import (
    EncodedDataset,
    accuracy_metric,
    accuracy_of,
    batches,
    last_checkpoint,
    loss_trainer,
    save_checkpoint,
    step_logger,
    training_arguments,
)

# --------------------------------------------------------------------------- training


# Workstation libraries finetune needs; on the light install it names the extra instead.
FINETUNE_MODULES = ("torch", "transformers", "sentencepiece", "safetensors")
SAVE_DTYPES = ("float16", "float32")


def check_config(config: FinetuneConfig) -> None:
    """Refuse settings that cannot train (zero vocabulary, non-positive epochs, ...) before any work."""
    def fail(name: str, value, valid: str):
        raise EdgeAlbertError(f"finetune: {name} must be {valid}, not {value!r}")

    def integer(name: str, minimum: int):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            fail(name, value, f"an integer >= {minimum}")

    def number(name: str, low: float, high: float, low_open: bool = False, high_open: bool = False):
        value = getattr(config, name)
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and \
            (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
        if not ok:
            bounds = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            fail(name, value, f"a number in {bounds}")

    integer("vocab_size", len(SPECIAL_PIECES) + 1)
    for name in ("embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "batch_size"):
        integer(name, 1)
    integer("max_position_embeddings", 3)
    integer("max_length", 3)  # [CLS] one piece [SEP]
    integer("seed", 0)
    if config.threads is not None:
        integer("threads", 1)
    if config.hidden_size % config.num_attention_heads:
        raise EdgeAlbertError(f"finetune: hidden_size {config.hidden_size} must be a multiple of "
                              f"num_attention_heads {config.num_attention_heads}")
    if config.max_length > config.max_position_embeddings:
        raise EdgeAlbertError(f"finetune: max_length {config.max_length} exceeds max_position_embeddings "
                              f"{config.max_position_embeddings}")
    number("epochs", 0, math.inf, low_open=True, high_open=True)
    number("learning_rate", 0, math.inf, low_open=True, high_open=True)
    number("mlm_epochs", 0, math.inf, high_open=True)
    number("mlm_learning_rate", 0, math.inf, low_open=True, high_open=True)
    number("weight_decay", 0, math.inf, high_open=True)
    number("warmup_ratio", 0, 1)
    for name in ("dropout", "classifier_dropout", "token_mask_prob"):
        number(name, 0, 1, high_open=True)
    if config.hidden_act not in SUPPORTED_ACTIVATIONS:  # what convert can take afterwards
        fail("hidden_act", config.hidden_act, f"one of {', '.join(SUPPORTED_ACTIVATIONS)}")
    if config.save_dtype not in SAVE_DTYPES:
        fail("save_dtype", config.save_dtype, f"one of {', '.join(SAVE_DTYPES)}")


def check_labels(labels: Sequence[str]) -> List[str]:
    """Label names: at least two, none empty, no repeats (a repeat would make two classes one)."""
    names = [str(name).strip() for name in labels]
    if len(names) < 2 or any(not name for name in names) or len(set(names)) != len(names):
        raise EdgeAlbertError(f"finetune: labels must be two or more distinct non-empty names, not {list(labels)!r}")
    return names


@dataclass
class FinetuneResult:
    """What a run produced; dev_accuracy is measured on the saved weights reloaded in float32."""

    out_dir: Path
    num_train: int
    num_parameters: int
    vocab_size: int
    train_seconds: float
    dev_accuracy: Optional[float] = None
    dev_accuracy_before_save: Optional[float] = None
    tokenizer_agreement: float = 1.0
    history: List[dict] = field(default_factory=list)


def finetune(
    train_path,
    out_dir,
    dev_path=None,
    config: Optional[FinetuneConfig] = None,
    text_column: str = DEFAULT_TEXT_COLUMN,
    label_column: str = DEFAULT_LABEL_COLUMN,
    pair_column: Optional[str] = None,
    labels: Sequence[str] = DEFAULT_LABELS,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> FinetuneResult:
    """Train tokenizer and classifier on `train_path`, save the checkpoint to `out_dir` atomically.

    The directory is written under a staging sibling and swapped into place (edge_albert.atomic),
    so an interrupted or killed run never leaves a half-written checkpoint, nor loses the old one.
    """
    config = config or FinetuneConfig()
    check_config(config)
    labels = check_labels(labels)
    require_workstation("finetune", FINETUNE_MODULES)
    out_dir = Path(out_dir)
    check_writable_output(out_dir, overwrite=overwrite, replaceable=_not_a_checkpoint)
    if config.init_from:  # a checkpoint directory or a Hugging Face model id
        config = replace(config, init_from=str(resolve_checkpoint(config.init_from)))
        _check_init_from(config.init_from)
    quiet_transformers()
    read = dict(text_column=text_column, label_column=label_column, pair_column=pair_column, labels=labels)
    train = read_examples(train_path, **read)
    dev = read_examples(dev_path, **read) if dev_path else []
    _start_torch(config)
    started = time.perf_counter()
    initial = load_initial_classifier(config.init_from, labels) if config.init_from else None
    with exclusive_run(out_dir):  # a second run on this output would share OUT.partial/
        work = work_dir(out_dir)
        resuming = _open_work_dir(work, _run_record(config, labels, read, train_path, dev_path), log)
        trained = _train_in_work_dir(work, resuming, initial, train, dev, labels, config, log)
        return _save_result(trained, out_dir, overwrite, config, started)


@dataclass
class _Trained:
    """What training hands to saving: the model in memory, its tokenizer, and what the result reports."""

    model: Any
    tokenizer: Any
    tokenizer_files: Dict[str, bytes]
    num_train: int
    dev_set: Optional[EncodedDataset]
    dev_accuracy: Optional[float]
    agreement: float
    history: List[dict]


def _start_torch(config: FinetuneConfig) -> None:
    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    _seed(config.seed)


def _train_in_work_dir(work: Path, resuming: bool, initial, train: List[Example], dev: List[Example],
                       labels: Sequence[str], config: FinetuneConfig, log) -> _Trained:
    """Tokenizer, model and training in the work directory, which is removed once the model is in memory.

    A setting or data problem removes it too, unless an epoch finished (then a rerun resumes).
    """
    texts = unique_in_order([e.text for e in train] + [e.text_pair for e in train if e.text_pair])
    rows = f"{len(train)} training rows, {len(dev)} dev rows"
    tokenizer_dir = work / "tokenizer"
    try:
        if initial is not None:
            log(f"{rows}; continuing from {config.init_from}")
            tokenizer, model = initial
            copy_tokenizer_files(Path(config.init_from), tokenizer_dir)
            agreement = 1.0
        else:
            tokenizer, agreement = train_or_resume_tokenizer(tokenizer_dir, resuming, texts, config, rows, log)
            model = new_classifier(config, len(tokenizer), labels)
        train_set = EncodedDataset(tokenizer, train, config.max_length)
        dev_set = EncodedDataset(tokenizer, dev, config.max_length) if dev else None
        history = _train(model, tokenizer, texts, train_set, dev_set, config, work, log)
    except EdgeAlbertError:  # a setting or data problem: nothing worth resuming unless an epoch finished
        if last_checkpoint(work / "trainer") is None:
            shutil.rmtree(work, ignore_errors=True)
        raise
    before = accuracy_of(model, dev_set, tokenizer, config.batch_size * 2) if dev_set else None
    tokenizer_files = {path.name: path.read_bytes() for path in tokenizer_dir.iterdir() if path.is_file()}
    shutil.rmtree(work)  # training is done: the resume state has served; the model is in memory
    return _Trained(model, tokenizer, tokenizer_files, len(train), dev_set, before, agreement, history)


def train_or_resume_tokenizer(tokenizer_dir: Path, resuming: bool, texts: List[str], config: FinetuneConfig, rows: str,
                              log: Callable[[str], None]) -> Tuple[Any, float]:
    """(tokenizer, agreement with SentencePiece): the one an interrupted run built, or a new one.

    The texts the checks sample come from one generator seeded by config.seed, drawn in the same
    order either way, so a resumed run checks the same texts as the run it continues.
    """
    rng = random.Random(config.seed)
    draw = lambda: rng.sample(texts, min(500, len(texts)))  # noqa: E731
    if resuming and (tokenizer_dir / "spiece.model").is_file():
        from transformers import AutoTokenizer

        log(f"{rows}; tokenizer from {tokenizer_dir}")
        spiece = (tokenizer_dir / "spiece.model").read_bytes()
        draw()  # the draw build_tokenizer's check made, so the next is the same
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    else:
        log(f"{rows}; training SentencePiece on {len(texts)} texts")
        spiece = train_sentencepiece(texts, config.vocab_size)
        scratch = tokenizer_dir.with_name("tokenizer.tmp")
        shutil.rmtree(scratch, ignore_errors=True)
        tokenizer = build_tokenizer(spiece, scratch, config.max_position_embeddings, draw())
        shutil.rmtree(tokenizer_dir, ignore_errors=True)
        os.rename(scratch, tokenizer_dir)
    return tokenizer, check_tokenizer(tokenizer, processor(spiece), draw())


def new_classifier(config: FinetuneConfig, vocab_size: int, labels: Sequence[str]) -> Any:
    """A randomly initialised ALBERT classifier of config's shape (finetune's and distill's scratch student)."""
    from transformers import AlbertForSequenceClassification

    return AlbertForSequenceClassification(_model_config(config, vocab_size, labels))


def _train(model, tokenizer, texts: List[str], train_set: EncodedDataset, dev_set: Optional[EncodedDataset],
           config: FinetuneConfig, work: Path, log) -> List[dict]:
    """The masked-LM warm-up (on a fresh start, when asked), then the classifier; one history entry per epoch."""
    trainer_dir = work / "trainer"
    checkpoint = last_checkpoint(trainer_dir)
    if config.mlm_epochs > 0 and checkpoint is None:
        mlm_texts = _maximal_texts(texts)
        log(f"masked-LM warm-up on {len(mlm_texts)} texts (the others are substrings of these)")
        _load_encoder(model, _mlm_warmup(model.config, tokenizer, mlm_texts, config, work / "mlm", log))
    if checkpoint:
        log(f"resuming from {checkpoint}")
    return _train_classifier(model, tokenizer, train_set, dev_set, config, trainer_dir, checkpoint, log)


def _load_encoder(model, encoder_state: Dict[str, Any]) -> None:
    """Put the warm-up's encoder weights into the classifier (its pooler stays new)."""
    missing, unexpected = model.albert.load_state_dict(encoder_state, strict=False)
    if unexpected or any(not name.startswith(POOLER.name + ".") for name in missing):
        raise EdgeAlbertError(f"MLM encoder weights do not fit: missing {missing}, unexpected {unexpected}")


def _save_result(trained: _Trained, out_dir: Path, overwrite: bool, config: FinetuneConfig,
                 started: float) -> FinetuneResult:
    """Write the checkpoint atomically; its dev accuracy is measured on the saved weights reloaded as the reference."""
    with replacing_directory(out_dir, overwrite=overwrite, replaceable=_not_a_checkpoint) as staging:
        for name, data in trained.tokenizer_files.items():
            (staging / name).write_bytes(data)
        save_checkpoint(trained.model, staging, config.save_dtype)
        train_seconds = time.perf_counter() - started
        dev_accuracy = None
        if trained.dev_set:
            dev_accuracy = accuracy_of(load_reference_model(staging), trained.dev_set, trained.tokenizer,
                                       config.batch_size * 2)
        (staging / "finetune_config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    return FinetuneResult(
        out_dir=out_dir,
        num_train=trained.num_train,
        num_parameters=sum(p.numel() for p in trained.model.parameters()),
        vocab_size=len(trained.tokenizer),
        train_seconds=train_seconds,
        dev_accuracy=dev_accuracy,
        dev_accuracy_before_save=trained.dev_accuracy,
        tokenizer_agreement=trained.agreement,
        history=trained.history,
    )


RUN_FORMAT = "edge-albert finetune run v1"


def work_dir(out_dir) -> Path:
    """Where a run keeps its tokenizer and Trainer checkpoints until the model is saved: OUT.partial/ beside OUT.

    Not the atomic staging directory, which dies with the process: this one outlives an
    interrupted run, so rerunning the same command resumes from its last epoch.
    """
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + ".partial")


def _run_record(config: FinetuneConfig, labels: Sequence[str], read: dict, train_path, dev_path) -> dict:
    """What must match for a rerun to continue an interrupted one: settings and the data files' contents."""
    return json.loads(json.dumps({
        "format": RUN_FORMAT, "config": asdict(config), "labels": list(labels),
        "columns": {k: v for k, v in read.items() if k != "labels"},
        "train_sha256": sha256_of_file(train_path), "dev_sha256": sha256_of_file(dev_path) if dev_path else None,
    }))


def _open_work_dir(work: Path, record: dict, log) -> bool:
    """Reuse the work directory an interrupted run with the same settings left (True), else start a fresh one."""
    run_file = work / "run.json"
    if work.exists():
        try:
            previous = json.loads(run_file.read_text())
        except (OSError, ValueError):
            previous = None
        if not isinstance(previous, dict) or previous.get("format") != RUN_FORMAT:
            raise EdgeAlbertError(f"finetune: {work} exists but is not a finetune work directory; move it away")
        if previous == record:
            log(f"resuming the interrupted run in {work}")
            return True
        log(f"{work} holds an interrupted run with other settings or data; starting afresh")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / "run.json.tmp").write_text(json.dumps(record, indent=2) + "\n")
    os.replace(work / "run.json.tmp", run_file)
    return False


def copy_tokenizer_files(source: Path, target: Path) -> None:
    """The checkpoint's tokenizer files (those of TOKENIZER_FILES it has) into `target`: a run keeps its vocabulary."""
    target.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            (target / name).write_bytes((source / name).read_bytes())


def _check_init_from(checkpoint_dir) -> None:
    """init_from must be a sequence-classification checkpoint convert could read: one line naming the setting."""
    try:
        architecture = load_checkpoint(checkpoint_dir).architecture
    except CheckpointError as exc:
        raise EdgeAlbertError(f"{{init_from}} {checkpoint_dir}: {exc}", options=("init_from",)) from None
    if architecture != "AlbertForSequenceClassification":
        raise EdgeAlbertError(f"{{init_from}} {checkpoint_dir} is an {architecture}; finetune continues a sequence "
                              "classifier (AlbertForSequenceClassification)", options=("init_from",))


def load_initial_classifier(checkpoint_dir, labels: Sequence[str]) -> Tuple[Any, Any]:
    """Tokenizer and float32 model of the checkpoint a run continues from; refused if its labels differ."""
    import torch
    from transformers import AlbertForSequenceClassification, AutoTokenizer

    source = Path(checkpoint_dir)
    model = AlbertForSequenceClassification.from_pretrained(str(source), dtype=torch.float32)
    found = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if found != list(labels):
        raise EdgeAlbertError(f"{source} has labels {found}, the data {list(labels)}")
    return AutoTokenizer.from_pretrained(str(source)), model


def evaluate(checkpoint_dir, examples: Sequence[Example], max_length: int = 64, batch_size: int = 128) -> float:
    """Accuracy of a saved checkpoint, run as the PyTorch reference, on labelled examples."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint_dir))
    model = load_reference_model(checkpoint_dir)
    return accuracy_of(model, EncodedDataset(tokenizer, list(examples), max_length), tokenizer, batch_size)


def predict(checkpoint_dir, texts: Sequence[str], max_length: int = 64) -> List[Tuple[str, float]]:
    """(label, probability) per text with the PyTorch model: the reference the bundles are checked against."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint_dir))
    runner = load_reference_runner(checkpoint_dir)
    batch = tokenizer(list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="np",
                      return_token_type_ids=True)
    probs = torch.from_numpy(runner.run(batch)["logits"]).softmax(-1)
    return [(runner.model.config.id2label[int(p.argmax())], float(p.max())) for p in probs]


def _seed(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def unique_in_order(items: Iterable[str]) -> List[str]:
    """`items` without repeats, first occurrences in order, so SentencePiece's sample is deterministic."""
    return list(dict.fromkeys(items))


def _maximal_texts(texts: Sequence[str], limit: int = 200000) -> List[str]:
    """Drop texts contained in a longer one (SST-2's phrases are cut from its sentences).

    The masked-LM warm-up then sees each sentence once per epoch instead of once per phrase,
    about a fifth of the pieces on SST-2. Above `limit` texts the quadratic search is skipped.
    """
    if len(texts) > limit:
        return list(texts)
    kept: List[str] = []
    joined = ""
    for text in sorted(set(texts), key=len, reverse=True):
        if f" {text} " not in joined:  # whole words only: "good" is not inside "goodness"
            kept.append(text)
            joined += f"\n {text} "
    return kept


def _model_config(config: FinetuneConfig, vocab_size: int, labels: Sequence[str]):
    from transformers import AlbertConfig

    if config.hidden_size % config.num_attention_heads:
        raise EdgeAlbertError(
            f"hidden_size {config.hidden_size} is not a multiple of num_attention_heads {config.num_attention_heads}"
        )
    return AlbertConfig(
        vocab_size=vocab_size,
        embedding_size=config.embedding_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_hidden_groups=1,
        inner_group_num=1,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        hidden_act=config.hidden_act,
        hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.dropout,
        classifier_dropout_prob=config.classifier_dropout,
        max_position_embeddings=config.max_position_embeddings,
        pad_token_id=PAD_ID, bos_token_id=CLS_ID, eos_token_id=SEP_ID,
        num_labels=len(labels),
        id2label={i: label for i, label in enumerate(labels)},
        label2id={label: i for i, label in enumerate(labels)},
        architectures=["AlbertForSequenceClassification"],
    )


def _train_classifier(model, tokenizer, train: EncodedDataset, dev: Optional[EncodedDataset], config: FinetuneConfig,
                      trainer_dir: Path, checkpoint: Optional[str], log) -> List[dict]:
    """Train on transformers' Trainer, a checkpoint per epoch in `trainer_dir`; one history entry per epoch.

    The entries live in Trainer's log_history, so a resumed run reports the epochs before the
    interruption too.
    """
    from transformers import DataCollatorWithPadding

    collator = DataCollatorWithPadding(tokenizer)
    running = {"loss": 0.0, "rows": 0}  # the training loss of the epoch so far, summed over rows
    args = training_arguments(
        trainer_dir, epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
        weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio, seed=config.seed,
        evaluate_each_epoch=dev is not None and config.eval_every_epoch, save_strategy="epoch", save_total_limit=1,
    )
    trainer = loss_trainer(_classifier_loss(config, running), model=model, args=args, train_dataset=train,
                           eval_dataset=dev, data_collator=collator,
                           compute_metrics=accuracy_metric if dev is not None else None,
                           callbacks=[_history_callback(config, dev, collator, running, log), step_logger(log)])
    trainer.train(resume_from_checkpoint=checkpoint)
    if dev is not None and not config.eval_every_epoch:
        trainer.evaluate()
    return _history(trainer.state.log_history)


def _classifier_loss(config: FinetuneConfig, running: dict) -> Callable:
    """The loss for loss_trainer: the model's cross-entropy, or with `multi_depth` the depth-weighted loss
    over every call of the shared layer; `token_mask_prob` masks input pieces while training only.
    Adds each training batch's loss to `running`."""

    def loss(model, inputs):
        if not model.training:
            outputs = model(**inputs)
            return outputs.loss, outputs
        if config.token_mask_prob > 0:
            inputs = {**inputs, "input_ids": _mask_tokens(inputs["input_ids"], config.token_mask_prob)}
        outputs = None
        if config.multi_depth:
            value = _multi_depth_loss(model, inputs)
        else:
            outputs = model(**inputs)
            value = outputs.loss
        rows = int(inputs["labels"].shape[0])
        running["loss"] += float(value.detach()) * rows
        running["rows"] += rows
        return value, outputs

    return loss


def _history_callback(config: FinetuneConfig, dev: Optional[EncodedDataset], collator, running: dict, log):
    """A TrainerCallback that records and logs one entry per epoch (training loss, then dev accuracy)."""
    from transformers import TrainerCallback

    started = time.perf_counter()

    def show(entry: dict) -> None:
        log("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in entry.items()))

    class History(TrainerCallback):
        def on_epoch_end(self, args, state, control, **kwargs):
            entry = {"epoch": math.ceil(state.epoch - 1e-6), "step": state.global_step,
                     "train_loss": running["loss"] / max(1, running["rows"]),
                     "seconds": round(time.perf_counter() - started, 1)}
            running.update(loss=0.0, rows=0)
            state.log_history.append({HISTORY_KEY: entry})
            if dev is None or not (config.eval_every_epoch or state.global_step >= state.max_steps):
                show(entry)

        def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
            entry = _history(state.log_history)[-1]
            entry["dev_accuracy"] = metrics["eval_accuracy"]
            if config.multi_depth:
                entry["dev_accuracy_per_call"] = depth_accuracies(model, dev, collator, config.batch_size * 2)
            show(entry)

    return History()


HISTORY_KEY = "edge_albert_epoch"


def _history(log_history: List[dict]) -> List[dict]:
    return [row[HISTORY_KEY] for row in log_history if HISTORY_KEY in row]


def _multi_depth_loss(model, batch):
    inputs = dict(batch)
    return multi_depth_loss(model, inputs.pop("labels"), **inputs)


def depth_accuracies(model, data: EncodedDataset, collator, batch_size: int) -> List[float]:
    """Accuracy of the classifier read after each layer call (call 1..L): what early exit can use."""
    import torch

    model.eval()
    correct = None
    with torch.no_grad():
        for batch in batches(data, collator, batch_size):
            labels = batch.pop("labels")
            hits = (per_call_logits(model, **batch).argmax(-1) == labels).sum(-1)
            correct = hits if correct is None else correct + hits
    return [int(c) / len(data) for c in correct]


def _mask_tokens(input_ids, probability: float):
    """Replace a random share of ordinary pieces by [MASK] (a cheap regulariser for a small data set)."""
    import torch

    candidates = input_ids > MASK_ID
    chosen = candidates & (torch.rand(input_ids.shape) < probability)
    return input_ids.masked_fill(chosen, MASK_ID)


def _mlm_warmup(model_config, tokenizer, texts: Sequence[str], config: FinetuneConfig, output_dir: Path,
                log) -> Dict[str, Any]:
    """Masked-LM pre-training on the task texts (on Trainer, 15% of pieces, 80/10/10); returns the encoder state."""
    from transformers import AlbertForMaskedLM, DataCollatorForLanguageModeling

    model = AlbertForMaskedLM(model_config)
    encoded = tokenizer(list(texts), truncation=True, max_length=config.max_length)
    rows = [{"input_ids": ids, "attention_mask": mask} for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"])]
    def loss(model, inputs):
        outputs = model(**inputs)
        return outputs.loss, outputs

    args = training_arguments(
        output_dir, epochs=config.mlm_epochs, batch_size=config.batch_size, learning_rate=config.mlm_learning_rate,
        weight_decay=config.weight_decay, warmup_ratio=0.06, seed=config.seed + 2, evaluate_each_epoch=False,
        save_strategy="no", logging_steps=200,
    )
    args.label_names = ["labels"]
    trainer = loss_trainer(loss, model=model, args=args, train_dataset=rows,
                           data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15),
                           callbacks=[step_logger(log, prefix="mlm ")])
    trainer.train()
    return model.albert.state_dict()


def _not_a_checkpoint(path: Path) -> Optional[str]:
    """Why the existing directory `path` must not be replaced by a checkpoint, or None."""
    if (path / "config.json").is_file() or not any(path.iterdir()):
        return None
    return "it is not a checkpoint (no config.json); remove it yourself or choose another directory"
