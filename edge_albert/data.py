"""Labelled files (TSV, CSV, JSONL): one reader for training, evaluation and conversion.

Device-side: only the standard library, so `evaluate` on a device and `finetune`/`convert` on
a workstation read a file the same way and report a bad row with the same file:line message.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence, Tuple

from .errors import DataError

DEFAULT_LABELS: Tuple[str, ...] = ("negative", "positive")
DEFAULT_TEXT_COLUMN = "sentence"  # training reads this column; evaluation and convert also try "text"
TEXT_COLUMN_CANDIDATES = (DEFAULT_TEXT_COLUMN, "text")
DEFAULT_LABEL_COLUMN = "label"


def split_text_lines(text: str) -> List[str]:
    """Split at LF, CRLF or a lone CR only (not at the Unicode separators str.splitlines also takes).

    A U+2028 inside a JSON string is text, not a line end.
    """
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


@dataclass(frozen=True)
class Example:
    """One labelled row; `line` is the 1-based line in the file where the row starts (for messages)."""

    text: str
    label: int
    text_pair: Optional[str] = None
    line: int = 0


def read_examples(
    path,
    text_column: str = DEFAULT_TEXT_COLUMN,
    label_column: str = DEFAULT_LABEL_COLUMN,
    pair_column: Optional[str] = None,
    labels: Sequence[str] = DEFAULT_LABELS,
    file_format: Optional[str] = None,
) -> List[Example]:
    """Read labelled examples from a TSV, CSV (both with a header row) or JSONL file.

    A label may be given as its index ("0", 1) or its name ("positive"). Every bad row raises
    DataError naming the file and line, because a silently skipped row changes what a model
    learns and what an accuracy figure means.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    fmt = (file_format or _format_from_suffix(path)).lower()
    text = _decode(path)
    if fmt == "jsonl":
        rows = _jsonl_rows(text, path)
    elif fmt in ("tsv", "csv"):
        rows = _delimited_rows(text, path, "\t" if fmt == "tsv" else ",")
    else:
        raise DataError(f"{path}: unknown format {fmt!r}; use tsv, csv or jsonl")
    labels = list(labels)
    if len(labels) < 2:
        raise DataError("a classifier needs at least two labels")
    examples = []
    for line, row in rows:
        examples.append(_example(row, line, path, text_column, label_column, pair_column, labels))
    if not examples:
        raise DataError(f"{path}: no examples (only a header or blank lines)")
    return examples


def _format_from_suffix(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("tsv", "tab"):
        return "tsv"
    if suffix == "csv":
        return "csv"
    if suffix in ("jsonl", "ndjson", "json"):
        return "jsonl"
    raise DataError(f"{path}: cannot tell the format from the suffix {path.suffix!r}; use .tsv, .csv or .jsonl")


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 ({exc.reason})") from None


def _jsonl_rows(text: str, path: Path) -> Iterable[Tuple[int, dict]]:
    rows = []
    for line, raw in enumerate(split_text_lines(text), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{line}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise DataError(f"{path}:{line}: JSON nested too deeply; expected a flat object per line") from None
        except ValueError:  # an integer beyond Python's int-string digit limit
            raise DataError(f"{path}:{line}: a number too long to read (over {sys.get_int_max_str_digits()} "
                            "digits)") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{line}: expected a JSON object per line, got {type(row).__name__}")
        rows.append((line, row))
    return rows


def _delimited_rows(text: str, path: Path, delimiter: str) -> Iterable[Tuple[int, dict]]:
    # TSV files such as GLUE's are not quoted (a review may start with a quote mark); CSV is.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    rows: List[Tuple[int, dict]] = []
    header: Optional[List[str]] = None
    start = 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            if header is None:
                header = [name.strip() for name in record]
                continue
            if len(record) != len(header):
                raise DataError(
                    f"{path}:{line}: {len(record)} fields but the header has {len(header)} "
                    f"({', '.join(header)})"
                )
            rows.append((line, dict(zip(header, record))))
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: {exc}") from None
    if header is None:
        raise DataError(f"{path}: empty file (expected a header row)")
    return rows


def _example(
    row: dict, line: int, path: Path, text_column: str, label_column: str,
    pair_column: Optional[str], labels: List[str],
) -> Example:
    def field_text(column: str) -> str:
        if column not in row:
            raise DataError(f"{path}:{line}: no {column!r} field (fields: {', '.join(map(str, row))})")
        value = row[column]
        if not isinstance(value, str):
            raise DataError(f"{path}:{line}: field {column!r} must be text, got {type(value).__name__}")
        value = value.strip()
        if not value:
            raise DataError(f"{path}:{line}: field {column!r} is empty")
        return value

    text = field_text(text_column)
    pair = field_text(pair_column) if pair_column else None
    if label_column not in row:
        raise DataError(f"{path}:{line}: no {label_column!r} field (fields: {', '.join(map(str, row))})")
    return Example(text=text, label=_label_index(row[label_column], labels, path, line), text_pair=pair, line=line)


def _label_index(value: Any, labels: List[str], path: Path, line: int) -> int:
    if isinstance(value, bool) or value is None or isinstance(value, float) and not value.is_integer():
        index = None
    elif isinstance(value, (int, float)):
        index = int(value)
    else:
        text = str(value).strip()
        if text in labels:
            return labels.index(text)
        index = int(text) if text.lstrip("-").isdigit() else None
    if index is None or not 0 <= index < len(labels):
        raise DataError(
            f"{path}:{line}: label {value!r} is neither an index 0..{len(labels) - 1} nor one of "
            f"{', '.join(labels)}"
        )
    return index


def data_columns(path: Path) -> Tuple[int, Optional[List[str]]]:
    """(line, column names) of a TSV/CSV header or of a JSONL file's first object; names None if unknown.

    Read here so that a wrong column name is reported against the header (line 1), once,
    instead of against every row.
    """
    suffix = path.suffix.lower().lstrip(".")
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            for line, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                if suffix in ("tsv", "tab"):
                    return line, [name.strip() for name in raw.rstrip("\r\n").split("\t")]
                if suffix == "csv":
                    return line, [name.strip() for name in next(csv.reader([raw]))]
                try:
                    first = json.loads(raw)
                except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
                    return line, None  # the reader reports it with its line number
                return line, [str(key) for key in first] if isinstance(first, dict) else None
    except UnicodeDecodeError:
        pass  # the reader reports it with its line number
    return 1, None
