"""Train finetune's tokenizer: a SentencePiece unigram model in ALBERT's layout, saved as transformers saves it.

ALBERT's special pieces take ids 0..4 (<pad>, <unk>, [CLS], [SEP], [MASK]); the text is prepared as
transformers' AlbertTokenizer prepares it. `build_tokenizer` writes the Hugging Face tokenizer files
and `check_tokenizer` measures how often it agrees with SentencePiece itself.

sentencepiece and transformers are imported inside the functions that need them (workstation side).
"""

from __future__ import annotations

import io
import json
import tempfile
import unicodedata
from pathlib import Path
from typing import List, Sequence, Tuple

from .errors import DataError, EdgeAlbertError

SPECIAL_PIECES: Tuple[str, ...] = ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]")
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(5)


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


def processor(spiece: bytes):
    """The SentencePiece processor of a serialized model, the reference `check_tokenizer` compares against."""
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=spiece)
