"""Fine-tune a small ALBERT text classifier from scratch, tokenizer included.

No pretrained ALBERT weights can be downloaded where this project is built, so the example
model the README converts is trained here: a SentencePiece unigram model in ALBERT's layout
(ids 0..4 = <pad>, <unk>, [CLS], [SEP], [MASK]) learnt on the training text, and a small
`AlbertForSequenceClassification` with ALBERT's standard cross-layer sharing. The result is an
ordinary Hugging Face checkpoint directory that the converter reads like any other.

torch, transformers and sentencepiece are imported inside the functions that need them, so
`import edge_albert` stays light on a device.
"""

from __future__ import annotations

import io
import json
import math
import random
import tempfile
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from .atomic import check_writable_output, replacing_directory
from .data import DEFAULT_LABELS, Example, read_examples
from .errors import DataError, EdgeAlbertError

SPECIAL_PIECES: Tuple[str, ...] = ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]")
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(5)


# --------------------------------------------------------------------------- tokenizer


def albert_preprocess(text: str) -> str:
    """Normalise text the way the Hugging Face ALBERT tokenizer does before SentencePiece.

    (remove_space, `` and '' to ", accents stripped, lower-cased.) The SentencePiece model must
    be trained on text in this form, or pieces learnt from capitals and accents never match.
    """
    text = " ".join(text.strip().split()).replace("``", '"').replace("''", '"')
    text = unicodedata.normalize("NFKD", text)
    text = "".join(char for char in text if not unicodedata.combining(char))
    return text.lower()


def train_sentencepiece(texts: Sequence[str], vocab_size: int = 8000, seed_sentencepiece_size: int = 1000000) -> bytes:
    """Train an ALBERT-layout SentencePiece unigram model on `texts`; return the serialized model.

    ids 0..4 are <pad>, <unk>, [CLS], [SEP], [MASK] as in Google's ALBERT, no BOS/EOS, so the
    Hugging Face tokenizer and the device tokenizers find the special tokens where they expect.
    On small corpora the vocabulary may come out smaller than asked (hard_vocab_limit=False).
    """
    import sentencepiece as spm

    prepared = [albert_preprocess(text) for text in texts if text.strip()]
    if not prepared:
        raise DataError("no text to train the SentencePiece model on")
    characters = len(set("".join(prepared)))
    if vocab_size < characters + len(SPECIAL_PIECES):
        raise EdgeAlbertError(f"finetune: vocab_size {vocab_size} is smaller than the {characters} distinct characters "
                              f"of the training text plus {len(SPECIAL_PIECES)} special pieces; use at least "
                              f"{characters + len(SPECIAL_PIECES)}")
    model = io.BytesIO()
    try:
        _train_sentencepiece_model(spm, prepared, model, vocab_size, seed_sentencepiece_size)
    except RuntimeError as exc:  # the trainer's own checks (its C++ CHECK messages)
        reason = str(exc).strip().splitlines()[0].split("] ")[-1] if str(exc).strip() else type(exc).__name__
        raise EdgeAlbertError(f"finetune: SentencePiece cannot train a {vocab_size}-piece vocabulary here: {reason}") from None
    proto = model.getvalue()
    processor = spm.SentencePieceProcessor(model_proto=proto)
    found = [processor.id_to_piece(i) for i in range(len(SPECIAL_PIECES))]
    if found != list(SPECIAL_PIECES):
        raise EdgeAlbertError(f"SentencePiece put the special pieces at ids 0..4 as {found}, not {list(SPECIAL_PIECES)}")
    return proto


def _train_sentencepiece_model(spm, prepared: List[str], model: io.BytesIO, vocab_size: int,
                               seed_sentencepiece_size: int) -> None:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(prepared),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        pad_id=PAD_ID, unk_id=UNK_ID, bos_id=-1, eos_id=-1,
        pad_piece="<pad>", unk_piece="<unk>",
        control_symbols=list(SPECIAL_PIECES[2:]),
        character_coverage=1.0,
        hard_vocab_limit=False,
        seed_sentencepiece_size=seed_sentencepiece_size,
        num_threads=1,  # deterministic and polite on a shared machine
        minloglevel=2,
    )


def build_tokenizer(spiece_model: bytes, out_dir, model_max_length: int = 512, check_texts: Sequence[str] = ()):
    """Build the Hugging Face ALBERT tokenizer for `spiece_model` and save it into `out_dir`.

    Built with AutoTokenizer from a directory holding config.json + spiece.model: in
    transformers 5, `AlbertTokenizer(vocab_file=...)` silently encodes every word as <unk>.
    Writes spiece.model, tokenizer.json and tokenizer_config.json, then checks the saved
    tokenizer against SentencePiece itself on `check_texts`. Returns the tokenizer.
    """
    import sentencepiece as spm
    from transformers import AutoTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edge-albert-spiece-") as scratch:
        Path(scratch, "spiece.model").write_bytes(spiece_model)
        Path(scratch, "config.json").write_text(json.dumps({"model_type": "albert"}))
        tokenizer = AutoTokenizer.from_pretrained(
            scratch, do_lower_case=True, remove_space=True, keep_accents=False, model_max_length=model_max_length
        )
        tokenizer.save_pretrained(str(out_dir))
    (out_dir / "spiece.model").write_bytes(spiece_model)  # save_pretrained of the fast tokenizer omits it
    tokenizer = AutoTokenizer.from_pretrained(str(out_dir))
    processor = spm.SentencePieceProcessor(model_proto=spiece_model)
    check_tokenizer(tokenizer, processor, list(check_texts) or ["hello world, this is a test of the tokenizer"])
    return tokenizer


def check_tokenizer(tokenizer, processor, texts: Sequence[str]) -> float:
    """Refuse a tokenizer that maps (almost) everything to <unk>; return its agreement with SentencePiece.

    Agreement is the fraction of `texts` whose ids equal SentencePiece's own encoding of the
    pre-processed text, the form the device tokenizers reproduce.
    """
    pieces = unknown = same = 0
    distinct: set = set()
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        pieces += len(ids)
        unknown += sum(1 for i in ids if i == UNK_ID)
        distinct.update(ids)
        same += ids == processor.encode(albert_preprocess(text))
    if pieces == 0 or unknown / pieces > 0.2 or len(distinct) < 2:
        raise EdgeAlbertError(
            f"the Hugging Face tokenizer maps {unknown} of {pieces} pieces to <unk> (ids seen: "
            f"{sorted(distinct)[:5]}); the SentencePiece model or tokenizer config is broken"
        )
    return same / len(texts)


# --------------------------------------------------------------------------- training


@dataclass
class FinetuneConfig:
    """Model shape and recipe. The defaults are the ones behind examples/sst2-albert."""

    vocab_size: int = 8000
    embedding_size: int = 128
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    hidden_act: str = "gelu_new"
    max_position_embeddings: int = 128
    max_length: int = 64
    dropout: float = 0.1
    classifier_dropout: float = 0.1
    epochs: float = 3.0
    batch_size: int = 64
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    mlm_epochs: float = 0.0  # masked-LM warm-up on the same texts before the classifier
    mlm_learning_rate: float = 1e-3
    token_mask_prob: float = 0.0  # replace this share of input pieces by [MASK] while fine-tuning
    seed: int = 0
    threads: Optional[int] = None
    save_dtype: str = "float16"  # storage only; config.json says float32 and loaders cast up
    eval_every_epoch: bool = True
    # Early exit: train the one classifier after every call of the shared layer, losses weighted by
    # depth (PABEE), so every depth predicts well; the checkpoint gains no parameters.
    multi_depth: bool = False
    # Continue from this checkpoint (its tokenizer, shape and weights) instead of training from scratch.
    init_from: Optional[str] = None


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
    from .converters.checkpoint import SUPPORTED_ACTIVATIONS  # what convert can take afterwards

    if config.hidden_act not in SUPPORTED_ACTIVATIONS:
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
    text_column: str = "sentence",
    label_column: str = "label",
    pair_column: Optional[str] = None,
    labels: Sequence[str] = DEFAULT_LABELS,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> FinetuneResult:
    """Train tokenizer and classifier on `train_path`, save the checkpoint to `out_dir` atomically.

    The directory is written under a staging sibling and swapped into place (edge_albert.atomic),
    so an interrupted or killed run never leaves a half-written checkpoint, nor loses the old one.
    """
    from .converters.quiet import quiet_transformers, require_workstation

    config = config or FinetuneConfig()
    check_config(config)
    labels = check_labels(labels)
    require_workstation("finetune", FINETUNE_MODULES)
    out_dir = Path(out_dir)
    check_writable_output(out_dir, overwrite=overwrite, replaceable=_not_a_checkpoint)
    quiet_transformers()
    read = dict(text_column=text_column, label_column=label_column, pair_column=pair_column, labels=labels)
    train = read_examples(train_path, **read)
    dev = read_examples(dev_path, **read) if dev_path else []

    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    _seed(config.seed)
    started = time.perf_counter()
    with replacing_directory(out_dir, overwrite=overwrite, replaceable=_not_a_checkpoint) as staging:
        texts = _unique([e.text for e in train] + [e.text_pair for e in train if e.text_pair])
        from transformers import AlbertForSequenceClassification

        if config.init_from:
            log(f"{len(train)} training rows, {len(dev)} dev rows; continuing from {config.init_from}")
            tokenizer, model, agreement = _load_initial(config.init_from, staging, labels)
        else:
            log(f"{len(train)} training rows, {len(dev)} dev rows; training SentencePiece on {len(texts)} texts")
            spiece = train_sentencepiece(texts, config.vocab_size)
            rng = random.Random(config.seed)
            tokenizer = build_tokenizer(
                spiece, staging, config.max_position_embeddings, rng.sample(texts, min(500, len(texts)))
            )
            agreement = check_tokenizer(tokenizer, _processor(spiece), rng.sample(texts, min(500, len(texts))))
            model = AlbertForSequenceClassification(_model_config(config, len(tokenizer), labels))
        vocab_size = len(tokenizer)
        model_config = model.config
        train_enc = _encode(tokenizer, train, config.max_length)
        dev_enc = _encode(tokenizer, dev, config.max_length)

        if config.mlm_epochs > 0:
            mlm_texts = _maximal_texts(texts)
            log(f"masked-LM warm-up on {len(mlm_texts)} texts (the others are substrings of these)")
            encoder_state = _mlm_warmup(model_config, _encode_texts(tokenizer, mlm_texts, config.max_length), config, log)
            missing, unexpected = model.albert.load_state_dict(encoder_state, strict=False)
            if unexpected or any(not name.startswith("pooler.") for name in missing):
                raise EdgeAlbertError(f"MLM encoder weights do not fit: missing {missing}, unexpected {unexpected}")
        history = _train_classifier(model, train_enc, dev_enc, config, log)
        before = _accuracy(model, dev_enc, config.batch_size * 2) if dev_enc else None
        _save_checkpoint(model, staging, config.save_dtype)
        train_seconds = time.perf_counter() - started
        dev_accuracy = None
        if dev_enc:
            reloaded = AlbertForSequenceClassification.from_pretrained(str(staging), dtype=torch.float32)
            dev_accuracy = _accuracy(reloaded, dev_enc, config.batch_size * 2)
        (staging / "finetune_config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    result = FinetuneResult(
        out_dir=out_dir,
        num_train=len(train),
        num_parameters=sum(p.numel() for p in model.parameters()),
        vocab_size=vocab_size,
        train_seconds=train_seconds,
        dev_accuracy=dev_accuracy,
        dev_accuracy_before_save=before,
        tokenizer_agreement=agreement,
        history=history,
    )
    return result


def _load_initial(checkpoint_dir, staging: Path, labels: Sequence[str]):
    """Tokenizer (files copied into `staging`) and float32 model of the checkpoint a run continues from."""
    import torch
    from transformers import AlbertForSequenceClassification, AutoTokenizer

    source = Path(checkpoint_dir)
    model = AlbertForSequenceClassification.from_pretrained(str(source), dtype=torch.float32)
    found = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if found != list(labels):
        raise EdgeAlbertError(f"{source} has labels {found}, the data {list(labels)}")
    for name in ("spiece.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (source / name).is_file():
            (staging / name).write_bytes((source / name).read_bytes())
    return AutoTokenizer.from_pretrained(str(source)), model, 1.0


def evaluate(checkpoint_dir, examples: Sequence[Example], max_length: int = 64, batch_size: int = 128) -> float:
    """Accuracy of a saved checkpoint, loaded in float32 with transformers, on labelled examples."""
    import torch
    from transformers import AlbertForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint_dir))
    model = AlbertForSequenceClassification.from_pretrained(str(checkpoint_dir), dtype=torch.float32)
    return _accuracy(model, _encode(tokenizer, list(examples), max_length), batch_size)


def predict(checkpoint_dir, texts: Sequence[str], max_length: int = 64) -> List[Tuple[str, float]]:
    """(label, probability) per text with the PyTorch model: the reference the bundles are checked against."""
    import torch
    from transformers import AlbertForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint_dir))
    model = AlbertForSequenceClassification.from_pretrained(str(checkpoint_dir), dtype=torch.float32).eval()
    batch = tokenizer(list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    with torch.no_grad():
        probs = model(**batch).logits.softmax(-1)
    return [(model.config.id2label[int(p.argmax())], float(p.max())) for p in probs]


def _seed(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def _unique(items: Iterable[str]) -> List[str]:
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


def _processor(spiece: bytes):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=spiece)


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


@dataclass
class _Encoded:
    input_ids: List[List[int]]
    token_type_ids: List[List[int]]
    labels: List[int]

    def __len__(self) -> int:
        return len(self.input_ids)


def _encode(tokenizer, examples: Sequence[Example], max_length: int) -> _Encoded:
    if not examples:
        return _Encoded([], [], [])
    texts = [e.text for e in examples]
    pairs = [e.text_pair for e in examples] if examples[0].text_pair is not None else None
    enc = tokenizer(texts, pairs, truncation=True, max_length=max_length, return_token_type_ids=True)
    return _Encoded(enc["input_ids"], enc["token_type_ids"], [e.label for e in examples])


def _encode_texts(tokenizer, texts: Sequence[str], max_length: int) -> List[List[int]]:
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def _batches(lengths: Sequence[int], batch_size: int, rng: random.Random, shuffle: bool) -> List[List[int]]:
    """Batches of similar length (less padding, much faster on CPU), in random order when training."""
    order = list(range(len(lengths)))
    if not shuffle:
        order.sort(key=lambda i: lengths[i])
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _pad(rows: Sequence[Sequence[int]], value: int = 0):
    import torch

    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def _tensors(enc: _Encoded, index: Sequence[int]):
    import torch

    ids = _pad([enc.input_ids[i] for i in index], PAD_ID)
    return {
        "input_ids": ids,
        "attention_mask": (ids != PAD_ID).long(),
        "token_type_ids": _pad([enc.token_type_ids[i] for i in index], 0),
        "labels": torch.tensor([enc.labels[i] for i in index], dtype=torch.long),
    }


def _optimizer(model, learning_rate: float, weight_decay: float, total_steps: int, warmup_ratio: float):
    import torch

    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=learning_rate, betas=(0.9, 0.98), eps=1e-6,
    )
    warmup = max(1, int(total_steps * warmup_ratio))

    def schedule(step: int) -> float:  # linear warm-up, then linear decay to zero
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def _train_classifier(model, train: _Encoded, dev: _Encoded, config: FinetuneConfig, log) -> List[dict]:
    """Plain PyTorch loop with length-bucketed batches (see the report on why not Trainer)."""
    import torch

    rng = random.Random(config.seed + 1)
    lengths = [len(ids) for ids in train.input_ids]
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total_steps = max(1, int(steps_per_epoch * config.epochs))
    optimizer, scheduler = _optimizer(model, config.learning_rate, config.weight_decay, total_steps, config.warmup_ratio)
    history: List[dict] = []
    step, epoch, started = 0, 0, time.perf_counter()
    while step < total_steps:
        epoch += 1
        model.train()
        loss_sum, seen = 0.0, 0
        for index in _batches(lengths, config.batch_size, rng, shuffle=True):
            if step >= total_steps:
                break
            batch = _tensors(train, index)
            if config.token_mask_prob > 0:
                batch["input_ids"] = _mask_tokens(batch["input_ids"], config.token_mask_prob)
            loss = _multi_depth_loss(model, batch) if config.multi_depth else model(**batch).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            loss_sum += loss.item() * len(index)
            seen += len(index)
        entry = {"epoch": epoch, "step": step, "train_loss": loss_sum / max(1, seen),
                 "seconds": round(time.perf_counter() - started, 1)}
        if dev and (config.eval_every_epoch or step >= total_steps):
            entry["dev_accuracy"] = _accuracy(model, dev, config.batch_size * 2)
            if config.multi_depth:
                entry["dev_accuracy_per_call"] = depth_accuracies(model, dev, config.batch_size * 2)
        history.append(entry)
        log("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in entry.items()))
    return history


def _multi_depth_loss(model, batch):
    from .converters.early_exit import multi_depth_loss

    inputs = dict(batch)
    return multi_depth_loss(model, inputs.pop("labels"), **inputs)


def depth_accuracies(model, data: "_Encoded", batch_size: int) -> List[float]:
    """Accuracy of the classifier read after each layer call (call 1..L): what early exit can use."""
    import torch

    from .converters.early_exit import per_call_logits

    model.eval()
    correct = None
    with torch.no_grad():
        for index in _batches([len(ids) for ids in data.input_ids], batch_size, random.Random(0), shuffle=False):
            batch = _tensors(data, index)
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


def _mlm_warmup(model_config, sequences: List[List[int]], config: FinetuneConfig, log) -> Dict[str, Any]:
    """Masked-LM pre-training on the task texts; returns the encoder state for the classifier."""
    import torch
    from transformers import AlbertForMaskedLM

    model = AlbertForMaskedLM(model_config)
    rng = random.Random(config.seed + 2)
    lengths = [len(s) for s in sequences]
    steps_per_epoch = math.ceil(len(sequences) / config.batch_size)
    total_steps = max(1, int(steps_per_epoch * config.mlm_epochs))
    optimizer, scheduler = _optimizer(model, config.mlm_learning_rate, config.weight_decay, total_steps, 0.06)
    step, started = 0, time.perf_counter()
    vocab = model_config.vocab_size
    while step < total_steps:
        model.train()
        for index in _batches(lengths, config.batch_size, rng, shuffle=True):
            if step >= total_steps:
                break
            ids = _pad([sequences[i] for i in index], PAD_ID)
            attention = (ids != PAD_ID).long()
            candidates = ids > MASK_ID
            chosen = candidates & (torch.rand(ids.shape) < 0.15)
            labels = ids.masked_fill(~chosen, -100)
            roll = torch.rand(ids.shape)
            inputs = ids.masked_fill(chosen & (roll < 0.8), MASK_ID)
            random_ids = torch.randint(len(SPECIAL_PIECES), vocab, ids.shape)
            inputs = torch.where(chosen & (roll >= 0.8) & (roll < 0.9), random_ids, inputs)
            if not chosen.any():
                continue
            loss = model(input_ids=inputs, attention_mask=attention, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            if step % 200 == 0 or step == total_steps:
                log(f"mlm step {step}/{total_steps}  loss {loss.item():.3f}  {time.perf_counter() - started:.0f}s")
    return model.albert.state_dict()


def _accuracy(model, data: _Encoded, batch_size: int) -> float:
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for index in _batches([len(ids) for ids in data.input_ids], batch_size, random.Random(0), shuffle=False):
            batch = _tensors(data, index)
            labels = batch.pop("labels")
            correct += int((model(**batch).logits.argmax(-1) == labels).sum())
    return correct / len(data)


def _save_checkpoint(model, out_dir: Path, save_dtype: str) -> None:
    """Save config.json (dtype float32: the compute dtype) and model.safetensors in `save_dtype`.

    Storing float16 halves the file; transformers (dtype "auto" reads the config) and the
    project's reader both cast the weights back to float32.
    """
    import torch
    from safetensors.torch import save_file

    dtypes = {"float32": torch.float32, "float16": torch.float16}
    if save_dtype not in dtypes:
        raise EdgeAlbertError(f"save_dtype must be one of {', '.join(dtypes)}, not {save_dtype!r}")
    state = {name: tensor.detach().to(dtypes[save_dtype]).contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    model.config.dtype = "float32"
    model.config.save_pretrained(str(out_dir))


def _not_a_checkpoint(path: Path) -> Optional[str]:
    """Why the existing directory `path` must not be replaced by a checkpoint, or None."""
    if (path / "config.json").is_file() or not any(path.iterdir()):
        return None
    return "it is not a checkpoint (no config.json); remove it yourself or choose another directory"
