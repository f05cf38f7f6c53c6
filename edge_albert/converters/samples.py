"""Built-in sample texts for parity checks: varied lengths, casing, punctuation, pairs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

from ..data import split_text_lines
from ..errors import DataError

BUILT_IN_TEXTS = [
    "a gorgeous, witty, seductive movie.",
    "The plot is thin and the acting is worse.",
    "ok",
    "It's not the best film I've seen this year, but the last hour is genuinely moving and the score is superb.",
    "Crème brûlée at the café cost €4.50 — naïve pricing!",
    "HELLO, my dog is cute",
    "Numbers like 1,000,000 and 3.14 appear in https://example.com/a?b=c reviews.",
    "An utterly forgettable, overlong, self-indulgent mess that wastes a talented cast on a script "
    "that never decides whether it wants to be a comedy, a thriller or a family drama, and so fails at all three "
    "while the audience checks the time again and again and wonders when the credits will finally roll.",
    "``Quoted'' words and “smart quotes” with tabs\tand\nnewlines.",
    "東京 is a city; emoji 😀 too.",
]

BUILT_IN_PAIRS = [
    ("Who wrote the review?", "The review was written by a critic from Paris who loved the film."),
    ("What does it cost?", "The ticket costs 12 dollars, and popcorn is extra."),
    ("Where is the cinema?", "It stands near the old harbour, beside a small bakery that opens at dawn."),
    ("Why?", "Because the plot is thin."),
]


def read_text_lines(path) -> List[str]:
    """One text per non-empty line (UTF-8); a clear error for a missing or empty file.

    Lines end in LF, CRLF or a lone CR (old Mac files), and only there (split_text_lines).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes().count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 ({exc.reason})") from None
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc.strerror or exc}") from None
    lines = split_text_lines(text)
    texts = [line for line in lines if line.strip()]
    if not texts:
        raise DataError(f"{path} holds no non-empty lines")
    return texts


def sample_inputs(task: str, texts: Optional[List[str]] = None) -> Tuple[List[str], List[Optional[str]]]:
    """Texts (and second texts for QA) used to compare a variant with the reference."""
    if task == "question-answering":
        if texts:
            return [q for q in texts], [BUILT_IN_PAIRS[i % len(BUILT_IN_PAIRS)][1] for i in range(len(texts))]
        return [q for q, _ in BUILT_IN_PAIRS], [c for _, c in BUILT_IN_PAIRS]
    chosen = texts or BUILT_IN_TEXTS
    return list(chosen), [None] * len(chosen)
