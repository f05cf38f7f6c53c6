"""A spiece.model whose own normalizer does what the bundle's tokenizer.json normalizer does.

MediaPipe tokenizes with SentencePiece and applies only the normalizer stored in spiece.model (its
precompiled charsmap), while edge-albert tokenizes with tokenizer.json, whose normalizer runs the
Hugging Face ALBERT steps first (`` and '' -> ", NFKD, accent stripping, lowercase) and then the
charsmap. A charsmap is a longest-match table from strings to strings, and SentencePiece compiles
one from rules (`SentencePieceNormalizer(rule_tsv=...)`), so the export compiles the whole
tokenizer.json normalizer into one:

- every code point c maps to normalizer(c), whitespace of any kind turned into " " (the Hugging
  Face pre-tokenizer splits on Unicode White_Space; SentencePiece collapses and strips " " only);
- every multi-character key of the original charsmap (NFKC compositions such as Hangul jamo) and
  every Replace pattern maps to normalizer(key) where that differs from its characters mapped one
  by one.

What a table cannot express (a step that depends on context beyond a key, special tokens typed in
the text, which tokenizer.json matches before normalizing) is found by `token_differences`, which
the export reports per text.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Sequence

from ..errors import BundleError

# Unicode White_Space (what Rust's char::is_whitespace and tokenizers' WhitespaceSplit use).
WHITE_SPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
                        "\u200a\u2028\u2029\u202f\u205f\u3000")
NORMALIZER_NAME = "edge_albert_tokenizer_json"


@dataclass(frozen=True)
class CompiledSpiece:
    """The rewritten spiece.model and how many rules its charsmap was compiled from."""

    model: bytes
    rules: int


def compile_spiece(spiece_bytes: bytes, tokenizer_json: str) -> CompiledSpiece:
    """`spiece_bytes` with its normalizer replaced by tokenizer.json's normalizer compiled to a charsmap."""
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2 as model_pb2
    from tokenizers import Tokenizer

    model = model_pb2.ModelProto()
    model.ParseFromString(spiece_bytes)
    config = json.loads(tokenizer_json)
    normalizer = Tokenizer.from_str(tokenizer_json).normalizer
    rules = _rules(normalizer, config.get("normalizer"))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "rules.tsv")
        with open(path, "w", encoding="utf-8") as handle:
            for source, target in rules.items():
                handle.write(f"{_hex(source)}\t{_hex(target)}\n")
        sentencepiece.SetMinLogLevel(2)
        compiled = sentencepiece.SentencePieceNormalizer(rule_tsv=path)
    spec = model_pb2.NormalizerSpec()
    spec.ParseFromString(compiled.serialized_normalizer_spec())
    model.normalizer_spec.name = NORMALIZER_NAME
    model.normalizer_spec.precompiled_charsmap = spec.precompiled_charsmap
    model.normalizer_spec.ClearField("normalization_rule_tsv")
    # What tokenizer.json's pre-tokenizer does: split on whitespace, "▁" before every word.
    model.normalizer_spec.add_dummy_prefix = True
    model.normalizer_spec.remove_extra_whitespaces = True
    model.normalizer_spec.escape_whitespaces = True
    return CompiledSpiece(model=model.SerializeToString(), rules=len(rules))


def _rules(normalizer, config) -> Dict[str, str]:
    def target(text: str) -> str:
        out = normalizer.normalize_str(text) if normalizer is not None else text
        return "".join(" " if ch in WHITE_SPACE else ch for ch in out)

    rules: Dict[str, str] = {}
    for code in range(1, 0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        mapped = target(char)
        if mapped != char:
            rules[char] = mapped
    for key in _multi_char_keys(config):
        one_by_one = "".join(rules.get(ch, ch) for ch in key)
        mapped = target(key)
        if mapped != one_by_one:
            rules[key] = mapped
    return rules


def _multi_char_keys(config) -> List[str]:
    """Keys of more than one character: Replace patterns and the Precompiled charsmaps' own entries."""
    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    keys: List[str] = []
    steps = config.get("normalizers", []) if isinstance(config, dict) and config.get("type") == "Sequence" else [config]
    for step in steps:
        if not isinstance(step, dict):
            continue
        if step.get("type") == "Replace":
            pattern = step.get("pattern", {})
            if "String" not in pattern:
                raise BundleError(f"tokenizer.json's normalizer has a Replace with a regex ({pattern}); a SentencePiece "
                                  "charsmap cannot express it, so MediaPipe would tokenize differently")
            keys.append(pattern["String"])
        elif step.get("type") == "Precompiled" and step.get("precompiled_charsmap"):
            proto = model_pb2.ModelProto()
            proto.normalizer_spec.precompiled_charsmap = base64.b64decode(step["precompiled_charsmap"])
            proto.trainer_spec.model_type = model_pb2.TrainerSpec.UNIGRAM
            sentencepiece.SetMinLogLevel(2)
            decompiled = sentencepiece.SentencePieceNormalizer(model_proto=proto.SerializeToString()).Decompile()
            keys.extend(source for source, _ in decompiled if len(source) > 1)
    return [key for key in keys if len(key) > 1]


def _hex(text: str) -> str:
    return " ".join(f"{ord(ch):X}" for ch in text)


def token_differences(spiece_model: bytes, tokenizer_json: str, texts: Sequence[str]) -> List[str]:
    """The texts whose token ids from SentencePiece with `spiece_model` differ from tokenizer.json's."""
    import sentencepiece
    from tokenizers import Tokenizer

    processor = sentencepiece.SentencePieceProcessor(model_proto=spiece_model)
    tokenizer = Tokenizer.from_str(tokenizer_json)
    differ = []
    for text in texts:
        expected = tokenizer.encode(text, add_special_tokens=False).ids
        if processor.encode(text) != expected:
            differ.append(text)
    return differ
