"""ALBERT tokenization on the device, identical to transformers 5's AutoTokenizer.

The bundle carries the checkpoint's `tokenizer.json` as transformers 5 wrote it; transformers'
AlbertTokenizer itself runs that file through the `tokenizers` library. So loading it here with
`tokenizers` alone (no transformers) gives the same normaliser, Unigram model and [CLS]/[SEP]
template; this module only has to make the same truncation and padding calls transformers makes
(`truncation=..., max_length=..., stride=..., return_overflowing_tokens=..., padding=True`).
tests/test_tokenizer_parity.py holds it to that, id for id.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import BundleError

Offset = Tuple[int, int]
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")
# Texts longer than this many characters are cut before tokenizing (see `_prefix_with_tokens`):
# the tokenizers library encodes a whole text before truncating it (10 MB of text took 1.27 GB).
PRECUT_MIN_CHARS = 1 << 14
PRECUT_CHARS_PER_TOKEN = 16  # first guess of characters per token kept; doubled until enough
# A "word" (no ASCII whitespace) longer than this is cut inside: not language, and encoding it whole
# costs about 110 bytes per character. Only then can the last kept tokens differ from a whole encoding.
MAX_WORD_CHARS = 1 << 16
# Where a cut keeps the tokens before it unchanged: ASCII whitespace splits words (WhitespaceSplit), is
# its own NFKD form with combining class 0 (no reordering across it), and no normalizer rule spans it.
_CUT_POINT = re.compile(r"[ \t\n\r]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class Encoded:
    """A tokenized batch: one row per model input (an example can overflow into several rows).

    Rows are kept as the tokenizer returned them, unpadded; `batch(rows, width)` is the one padding
    step on the way to the model, straight to the width the model runs at. The padded views
    (`input_ids`, `attention_mask`, `token_type_ids`: int32 [rows, length], padded on the right to
    the longest row, transformers' `padding=True`; `offsets`, `sequence_ids`, `word_ids` per row
    and token, character offsets into the text of that token's sequence (0 = text, 1 = text_pair),
    special and padding tokens with offset (0, 0) and sequence id None) are built on first use.
    """

    def __init__(self, encodings: Sequence, example_index: np.ndarray, truncated: List[bool], pad_id: int,
                 pad_type_id: int = 0):
        self.encodings = list(encodings)
        self.example_index = example_index  # row -> index of the input it came from (overflow_to_sample_mapping)
        self.truncated = truncated  # per input: some of its tokens are in no row
        self.pad_id = pad_id
        self.pad_type_id = pad_type_id
        self._lengths = [len(encoding.ids) for encoding in self.encodings]
        self._padded: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None

    @property
    def num_rows(self) -> int:
        return len(self.encodings)

    @property
    def length(self) -> int:
        return max(self._lengths, default=0)

    def lengths(self) -> np.ndarray:
        """Number of real (unpadded) tokens per row."""
        return np.asarray(self._lengths, dtype=np.int64)

    def batch(self, rows: Sequence[int], width: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """input_ids, attention_mask and token_type_ids of `rows`, int32 [len(rows), width], padded on the right."""
        if len(rows) == 1 and self._lengths[rows[0]] == width:  # one text at its exact length: nothing to pad
            encoding = self.encodings[rows[0]]
            return (np.array([encoding.ids], dtype=np.int32), np.ones((1, width), dtype=np.int32),
                    np.array([encoding.type_ids], dtype=np.int32))
        shape = (len(rows), width)
        input_ids = np.full(shape, self.pad_id, dtype=np.int32)
        attention_mask = np.zeros(shape, dtype=np.int32)
        token_type_ids = np.full(shape, self.pad_type_id, dtype=np.int32)
        for i, row in enumerate(rows):
            encoding = self.encodings[row]
            n = self._lengths[row]
            input_ids[i, :n] = encoding.ids
            attention_mask[i, :n] = 1
            token_type_ids[i, :n] = encoding.type_ids
        return input_ids, attention_mask, token_type_ids

    def _arrays(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._padded is None:
            self._padded = self.batch(range(self.num_rows), self.length)
        return self._padded

    @property
    def input_ids(self) -> np.ndarray:
        return self._arrays()[0]

    @property
    def attention_mask(self) -> np.ndarray:
        return self._arrays()[1]

    @property
    def token_type_ids(self) -> np.ndarray:
        return self._arrays()[2]

    def _per_token(self, field: str, pad) -> list:
        width = self.length
        return [list(getattr(encoding, field)) + [pad] * (width - n) for encoding, n in zip(self.encodings, self._lengths)]

    @cached_property
    def offsets(self) -> List[List[Offset]]:
        return self._per_token("offsets", (0, 0))

    @cached_property
    def sequence_ids(self) -> List[List[Optional[int]]]:
        return self._per_token("sequence_ids", None)

    @cached_property
    def word_ids(self) -> List[List[Optional[int]]]:
        return self._per_token("word_ids", None)

    def rows(self, index: Union[slice, Sequence[int], np.ndarray]) -> "Encoded":
        """A sub-batch of rows, padded to its own longest row (padding per batch)."""
        picked = np.arange(self.num_rows)[index]
        return Encoded([self.encodings[i] for i in picked], self.example_index[picked], self.truncated,
                       self.pad_id, self.pad_type_id)


class AlbertTokenizer:
    """The bundle's tokenizer.json, called the way transformers 5 calls it."""

    def __init__(self, tokenizer, pad_id: Optional[int] = None, pad_type_id: int = 0):
        self._tokenizer = tokenizer
        # A tokenizer.json may carry its own truncation/padding; transformers overrides both per call.
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        if pad_id is None:
            pad_id = tokenizer.token_to_id("<pad>")
        if pad_id is None:
            raise BundleError("the tokenizer has no <pad> token and the manifest gives no pad_id")
        self.pad_id = int(pad_id)
        self.pad_type_id = int(pad_type_id)
        self._truncation: Optional[tuple] = None  # what the tokenizer is set to: (max_length, stride, strategy)

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike], pad_id: Optional[int] = None) -> "AlbertTokenizer":
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception for unreadable files
            raise BundleError(f"{path} cannot be loaded by the tokenizers library: {exc}") from None
        return cls(tokenizer, pad_id=pad_id)

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def token_to_id(self, token: str) -> Optional[int]:
        return self._tokenizer.token_to_id(token)

    def id_to_token(self, token_id: int) -> Optional[str]:
        return self._tokenizer.id_to_token(token_id)

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` without [CLS]/[SEP]."""
        self._truncate(None)
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def _truncate(self, setting: Optional[tuple]) -> None:
        """Set the tokenizer's truncation ((max_length, stride, strategy) or None), calling it only on a change."""
        if setting == self._truncation:
            return
        if setting is None:
            self._tokenizer.no_truncation()
        else:
            max_length, stride, strategy = setting
            self._tokenizer.enable_truncation(max_length, stride=stride, strategy=strategy, direction="right")
        self._truncation = setting

    def encode(
        self,
        texts: Sequence[str],
        text_pairs: Optional[Sequence[str]] = None,
        max_length: Optional[int] = None,
        truncation: Union[str, bool, None] = "longest_first",
        stride: int = 0,
        return_overflowing_tokens: bool = False,
    ) -> Encoded:
        """Tokenize a batch like `AutoTokenizer(texts, text_pairs, truncation=..., max_length=...,
        stride=..., return_overflowing_tokens=..., padding=True)`.

        With `return_overflowing_tokens`, a truncated input continues in further rows that overlap
        by `stride` tokens (question answering over long contexts); otherwise the rest is dropped
        and the input is marked in `truncated`.
        """
        texts = [_as_text(t) for t in texts]
        if text_pairs is not None:
            text_pairs = [_as_text(t) for t in text_pairs]
            if len(text_pairs) != len(texts):
                raise ValueError(f"{len(texts)} texts but {len(text_pairs)} text pairs")
        if truncation is True:  # transformers' spelling of the default strategy
            truncation = "longest_first"
        if truncation and max_length is not None and truncation not in TRUNCATION_STRATEGIES:
            raise ValueError(f"truncation must be one of {TRUNCATION_STRATEGIES}, not {truncation!r}")
        truncate = (max_length, stride, truncation) if truncation and max_length is not None else None
        try:
            encodings = self._encode_all(texts, text_pairs, truncate, return_overflowing_tokens)
        except TypeError:  # lone surrogates ("\\ud800", undecodable argv bytes): the tokenizer takes only UTF-8
            encodings = self._encode_all([clean_text(t) for t in texts],
                                         None if text_pairs is None else [clean_text(t) for t in text_pairs],
                                         truncate, return_overflowing_tokens)
        rows, example_index, truncated = [], [], []
        for index, encoding in enumerate(encodings):
            truncated.append(bool(encoding.overflowing) and not return_overflowing_tokens)
            rows.append(encoding)
            example_index.append(index)
            if return_overflowing_tokens:
                for overflow in encoding.overflowing:
                    rows.append(overflow)
                    example_index.append(index)
        return Encoded(rows, np.asarray(example_index, dtype=np.int64), truncated, self.pad_id, self.pad_type_id)

    def _encode_all(self, texts: List[str], pairs: Optional[List[str]], truncate: Optional[tuple],
                    overflow: bool) -> list:
        """One encoding per input; a single input skips encode_batch's thread-pool hand-off (same result)."""
        if truncate is not None and not overflow:
            texts, pairs = self._precut(texts, pairs, truncate[0], truncate[2])
        self._truncate(truncate)
        if len(texts) == 1:
            return [self._tokenizer.encode(texts[0], None if pairs is None else pairs[0], add_special_tokens=True)]
        inputs = texts if pairs is None else list(zip(texts, pairs))
        return self._tokenizer.encode_batch(inputs, add_special_tokens=True) if inputs else []

    def _prefix_with_tokens(self, text: str, tokens_needed: int) -> str:
        """A prefix of `text` whose tokens are the first tokens of `text`, at least `tokens_needed` of them.

        The prefix ends just before ASCII whitespace (_CUT_POINT): words are tokenized independently,
        so the prefix's tokens are exactly the whole text's first tokens, and truncating either to
        fewer than `tokens_needed` tokens keeps the same ones. Short texts are returned whole; a word
        of more than MAX_WORD_CHARS characters is cut inside (the one case where tokens may differ).
        """
        if len(text) <= PRECUT_MIN_CHARS:
            return text
        size = max(PRECUT_MIN_CHARS, tokens_needed * PRECUT_CHARS_PER_TOKEN)
        while size < len(text):
            cut = _CUT_POINT.search(text, size, size + MAX_WORD_CHARS)
            prefix = text[:cut.start() if cut else size + MAX_WORD_CHARS]
            if self.count_tokens(prefix) >= tokens_needed:
                return prefix
            size *= 2
        return text

    def _precut(self, texts: List[str], pairs: Optional[List[str]], max_length: int,
                truncation: str) -> Tuple[List[str], Optional[List[str]]]:
        """Cut long inputs before encoding, so that memory follows max_length and not the text's size.

        With pairs, only one long side is cut, and it keeps more tokens than its partner and than
        max_length: "longest_first" truncation depends on which side is longer, so that must not change.
        """
        need = max_length + 1
        if pairs is None:
            return [self._prefix_with_tokens(text, need) for text in texts], None
        cut_texts, cut_pairs = [], []
        for first, second in zip(texts, pairs):
            long_first, long_second = len(first) > PRECUT_MIN_CHARS, len(second) > PRECUT_MIN_CHARS
            if long_first and not long_second and truncation in ("longest_first", "only_first"):
                first = self._prefix_with_tokens(first, max(need, self.count_tokens(second) + 1))
            elif long_second and not long_first and truncation in ("longest_first", "only_second"):
                second = self._prefix_with_tokens(second, max(need, self.count_tokens(first) + 1))
            cut_texts.append(first)
            cut_pairs.append(second)
        return cut_texts, cut_pairs

    def shorten(self, text: str, max_tokens: int) -> Tuple[str, bool]:
        """Cut `text` so that it has at most `max_tokens` tokens, at a word boundary where one fits.

        Used for questions that would leave no room for the context (transformers' "only_second"
        truncation raises on them). Returns the kept prefix and whether anything was cut.
        """
        text = _as_text(text)
        try:
            text = self._prefix_with_tokens(text, max(0, max_tokens) + 1)
            self._truncate(None)
            encoding = self._tokenizer.encode(text, add_special_tokens=False)
        except TypeError:  # lone surrogates, as in `encode`
            if clean_text(text) == text:
                raise
            return self.shorten(clean_text(text), max_tokens)
        if len(encoding.ids) <= max_tokens:
            return text, False
        if max_tokens <= 0:
            return "", True
        words = encoding.word_ids
        # The last word whose tokens all fit: words tokenize independently (whitespace pre-split).
        cut_word = words[max_tokens] if words[max_tokens] is not None else None
        kept_end = 0
        for token_index in range(max_tokens):
            if words[token_index] != cut_word or cut_word is None:
                kept_end = encoding.offsets[token_index][1]
        if kept_end == 0:  # a single word longer than the limit: cut inside it
            kept_end = encoding.offsets[max_tokens - 1][1]
        prefix = text[:kept_end]
        while kept_end > 0 and self.count_tokens(prefix) > max_tokens:
            kept_end -= 1
            prefix = text[:kept_end]
        return prefix, True


def _as_text(value) -> str:
    """The text to tokenize (None: empty). Lone surrogates are replaced only if the tokenizer refuses the text
    (see `encode`), so texts cleaned where they were read are not scanned again."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"expected a str to tokenize, got {type(value).__name__}")
    return value


def clean_text(text: str) -> str:
    """`text` with lone surrogates replaced by U+FFFD, which the tokenizer and UTF-8 output accept."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text
