"""Build small random-initialised ALBERT checkpoints with transformers for tests (no network)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.project_data import ALBERT_SPIECE  # noqa: F401  (re-exported for the tests that import it from here)

TINY_SHAPE = dict(
    vocab_size=30000, embedding_size=16, hidden_size=32, num_hidden_layers=3,
    num_attention_heads=4, intermediate_size=37, max_position_embeddings=64,
)
BASE_SHAPE = dict(
    vocab_size=30000, embedding_size=128, hidden_size=768, num_hidden_layers=12,
    num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512,
)

ARCHITECTURES = {
    "text-classification": "AlbertForSequenceClassification",
    "question-answering": "AlbertForQuestionAnswering",
    "token-classification": "AlbertForTokenClassification",
    "feature-extraction": "AlbertModel",
}


def require_shared_data() -> Path:
    if not ALBERT_SPIECE.is_file():
        raise FileNotFoundError(
            f"{ALBERT_SPIECE} is missing: it is part of the repository (data/README.md)"
        )
    return ALBERT_SPIECE


def make_albert_checkpoint(
    out_dir: Path,
    task: str = "text-classification",
    shape: dict | None = None,
    labels: list | None = None,
    seed: int = 0,
    hidden_act: str = "gelu_new",
    spiece: Path | None = None,
    safe_serialization: bool = True,
    with_tokenizer_json: bool = True,
) -> Path:
    """Save a random-initialised ALBERT checkpoint with the albert-base-v2 SentencePiece tokenizer."""
    import torch
    import transformers
    from transformers import AlbertConfig, AutoTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shape = dict(shape or TINY_SHAPE)
    default_labels = {"text-classification": ["negative", "positive"], "question-answering": ["start", "end"]}
    labels = labels or default_labels.get(task, ["O", "B-X", "I-X"])
    config = AlbertConfig(
        **shape,
        hidden_act=hidden_act,
        num_labels=len(labels),
        id2label={i: label for i, label in enumerate(labels)},
        label2id={label: i for i, label in enumerate(labels)},
    )
    torch.manual_seed(seed)
    model = getattr(transformers, ARCHITECTURES[task])(config).eval()
    model.save_pretrained(str(out_dir), safe_serialization=safe_serialization)
    spiece = Path(spiece or require_shared_data())
    shutil.copyfile(spiece, out_dir / "spiece.model")
    if with_tokenizer_json:
        tokenizer = AutoTokenizer.from_pretrained(str(out_dir))
        tokenizer.save_pretrained(str(out_dir))
    return out_dir


def edit_config(checkpoint: Path, **changes) -> None:
    path = Path(checkpoint) / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def make_bert_teacher(out_dir: Path, texts, labels: list | None = None, seed: int = 0, with_tokenizer: bool = True) -> Path:
    """A tiny random BertForSequenceClassification with a WordPiece tokenizer over `texts`' words
    (built with the `tokenizers` library, saved as a transformers tokenizer): a foreign teacher for distill."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = labels or ["negative", "positive"]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted({w for text in texts for w in text.lower().split()} - set(specials))
    vocab = {token: i for i, token in enumerate(specials + words)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    if with_tokenizer:
        PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                sep_token="[SEP]", mask_token="[MASK]").save_pretrained(str(out_dir))
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=24, max_position_embeddings=128, num_labels=len(labels),
                        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(str(out_dir))
    return out_dir
