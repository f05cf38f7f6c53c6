"""Resource-free data augmentation for distillation (Tang et al. 2019, "Distilling Task-Specific
Knowledge from BERT into Simple Neural Networks", section 3.3).

Per word, with probability p_mask the word becomes the tokenizer's mask token; then, with
probability p_ng, the whole example is cut down to a random n-gram of it, n uniform in 1..5.
The paper's third rule, POS-guided word replacement (a word swapped for another of the same part
of speech), needs a tagger and word lists (WordNet / POS data) that cannot be downloaded here, so
it is not implemented: a word that rule would have drawn stays unchanged.

Augmented rows carry no gold label (NO_LABEL, the ignore index of torch's cross-entropy): the
distillation loss trains them on the teacher's soft targets only.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace
from typing import List, Optional, Sequence

from ..data import Example
from ..errors import CompressionError

NO_LABEL = -100  # torch.nn.functional.cross_entropy's default ignore_index
MAX_NGRAM = 5
NOT_IMPLEMENTED = ("POS-guided word replacement (needs a POS tagger and WordNet-style word lists, "
                   "which cannot be downloaded here)")


@dataclass(frozen=True)
class AugmentConfig:
    copies: int = 0  # augmented copies per training row; 0 = no augmentation
    p_mask: float = 0.1  # the paper's p_mask
    p_ngram: float = 0.25  # the paper's p_ng

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self) -> None:
        """One error before anything is trained: counts and probabilities out of range."""
        if self.copies < 0:
            raise CompressionError("{augment} must be 0 or more copies per row", options=("augment",))
        for name in ("p_mask", "p_ngram"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise CompressionError(f"augmentation {name} must be between 0 and 1, not {getattr(self, name)}")


def augment_words(words: Sequence[str], rng: random.Random, mask_token: str, p_mask: float, p_ngram: float) -> List[str]:
    """One synthetic word list: masking per word, then n-gram sampling of the whole example."""
    out = [mask_token if rng.random() < p_mask else w for w in words]
    if out and rng.random() < p_ngram:
        n = rng.randint(1, MAX_NGRAM)
        if n < len(out):
            start = rng.randrange(len(out) - n + 1)
            out = out[start:start + n]
    return out


def augment_text(text: str, rng: random.Random, mask_token: str, config: AugmentConfig) -> str:
    """Whitespace words in, whitespace words out (SST-2 and GLUE text is already tokenized into words)."""
    return " ".join(augment_words(text.split(), rng, mask_token, config.p_mask, config.p_ngram))


def augment_examples(examples: Sequence[Example], config: AugmentConfig, mask_token: str, seed: int) -> List[Example]:
    """`config.copies` unlabelled synthetic rows per example, in order, reproducible from `seed`.

    Sentence pairs are augmented side by side with the same rules.
    """
    rng = random.Random(seed)
    out: List[Example] = []
    for example in examples:
        for _ in range(config.copies):
            pair: Optional[str] = None
            text = augment_text(example.text, rng, mask_token, config)
            if example.text_pair is not None:
                pair = augment_text(example.text_pair, rng, mask_token, config)
            out.append(replace(example, text=text, text_pair=pair, label=NO_LABEL))
    return out


def mask_token_of(tokenizer) -> str:
    """The tokenizer's [MASK] (ALBERT has one), else its unknown-word token."""
    token = getattr(tokenizer, "mask_token", None) or getattr(tokenizer, "unk_token", None)
    if not token:
        raise CompressionError("the teacher's tokenizer has neither a mask token nor an unknown-word token to augment with")
    return token
