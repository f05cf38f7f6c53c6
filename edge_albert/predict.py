"""Streaming prediction for `edge-albert predict`: records in, one JSON object per record out.

Records are read lazily and predicted `batch_size` at a time, so a file of any size runs in
bounded memory and results appear while input is still arriving.
"""

from __future__ import annotations

import json
import sys
from typing import Iterable, Iterator, List, Optional, Union

from .errors import DataError
from .tasks import MAX_QA_CONTEXT_CHARS, BundleModel, QuestionAnswerer, TextClassifier
from .tokenizer import clean_text

TEXT_FIELDS = ("text", "text_pair", "question", "context")
EXAMPLE = '{"text": "..."}'


def records_from_lines(lines: Iterable[str], jsonl: bool, task: Optional[str] = None) -> Iterator[dict]:
    """One record per line: the line itself as `text`, or (with `jsonl`) a JSON object, checked once here
    (for the bundle's `task` when given), so a batch never holds a record that cannot run.

    Texts are cleaned here, once: undecodable bytes (argv's surrogate escapes) and lone surrogates (JSON
    "\\ud800") become U+FFFD in texts and ids, so such a line is predicted like any other and its echo can
    be written as UTF-8.
    """
    for number, line in enumerate(lines, start=1):
        line = line[:-1] if line.endswith("\n") else line
        line = line[:-1] if line.endswith("\r") else line
        if not jsonl:
            yield {"text": decoded_text(line)}
            continue
        if not line.strip():
            continue  # blank lines between JSON objects are not records
        record = parse_json(line, f"input line {number}")
        check_record(record, f"input line {number}", task)
        for key in TEXT_FIELDS + ("id",):
            if isinstance(record.get(key), str):
                record[key] = clean_text(record[key])
        yield record


def decoded_text(text: str) -> str:
    """A line read from argv or a byte stream, its undecodable bytes (surrogate escapes) decoded as UTF-8 does
    with errors="replace"; other lone surrogates become U+FFFD as in `clean_text`."""
    cleaned = clean_text(text)
    if cleaned is text:
        return text
    try:
        return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        return cleaned


def parse_json(text: Union[str, bytes], where: str) -> object:
    """Parse one JSON record; every way JSON can fail is a DataError naming `where`.

    One function for `predict --jsonl` lines and server request bodies, so both refuse bad JSON
    (too deep, a number too long, not UTF-8) with the same words instead of a traceback.
    """
    try:
        return json.loads(text)
    except UnicodeDecodeError:  # bytes only (a request body)
        raise DataError(f"{where} is not valid JSON (not UTF-8); expected an object like {EXAMPLE}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{where} is not valid JSON ({exc.msg}); expected an object like {EXAMPLE}") from None
    except RecursionError:
        raise DataError(f"{where} nests JSON too deeply; expected a flat object like {EXAMPLE}") from None
    except ValueError:  # an integer beyond Python's int-string digit limit (4300 digits by default)
        raise DataError(f"{where} has a number too long to read (over {sys.get_int_max_str_digits()} digits); "
                        "ids and fields must be strings or ordinary numbers") from None


def check_record(record: object, where: str, task: Optional[str] = None) -> None:
    """Refuse a record that is not an object with string `text` or `question` + `context` fields, or (with
    `task`) one the bundle's task cannot use, before it joins a batch with other records.

    `where` names the record in the message ("input line 3" for the CLI, "record 3" for the server),
    so both report a bad record with the same words.
    """
    if not isinstance(record, dict):
        raise DataError(f"{where} is a JSON {type(record).__name__}, expected an object")
    has_text = "text" in record
    has_qa = "question" in record and "context" in record
    if not has_text and not has_qa:
        raise DataError(f"{where} has neither a 'text' field nor 'question' and 'context'")
    for key in ("text", "text_pair", "question", "context"):
        if key in record and not isinstance(record[key], str):
            raise DataError(f"{where}: field {key!r} must be a string, not {type(record[key]).__name__}")
    if has_qa and len(record["context"]) > MAX_QA_CONTEXT_CHARS:
        raise DataError(f"{where}: 'context' has {len(record['context']):,} characters; question answering reads "
                        f"at most {MAX_QA_CONTEXT_CHARS:,} per context: split the document")
    if task is not None:
        _check_task(record, task)


def _check_task(record: dict, task: str) -> None:
    if task == "question-answering":
        if not has_text_pair_or_qa(record):
            raise DataError("a question-answering bundle needs records with 'question' and 'context'")
    elif "text" not in record:
        raise DataError("this bundle needs records with a 'text' field")


def has_text_pair_or_qa(record: dict) -> bool:
    return ("question" in record and "context" in record) or "text_pair" in record


def _batches(records: Iterable[dict], size: int) -> Iterator[List[dict]]:
    """Group records; on a bad record, the good ones read before it are still predicted."""
    batch: List[dict] = []
    iterator = iter(records)
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            break
        except DataError:
            if batch:
                yield batch
            raise
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict_records(model: BundleModel, records: Iterable[dict], batch_size: int = 32,
                    top_k: Optional[int] = None) -> Iterator[dict]:
    """Yield one result dict per record (checked by `check_record` for the model's task), in input order."""
    for batch in _batches(records, max(1, batch_size)):
        yield from predict_batch(model, batch, top_k)


def predict_batch(model: BundleModel, batch: List[dict], top_k: Optional[int] = None,
                  echo_inputs: bool = True) -> List[dict]:
    """One result dict per record of an already-read batch (the server's micro-batches run here too).

    Results carry the record's `id`, and its text or question unless `echo_inputs` is false.
    """
    if isinstance(model, QuestionAnswerer):
        questions, contexts = [], []
        for record in batch:
            if "question" in record and "context" in record:
                questions.append(record["question"])
                contexts.append(record["context"])
            elif "text_pair" in record:
                questions.append(record["text"])
                contexts.append(record["text_pair"])
            else:  # records are checked where they are read (check_record); this one was not
                _check_task(record, model.task)
        results = model.predict(questions, contexts)
        echo = ("id", "question") if echo_inputs else ("id",)
        return [_output(record, result.to_dict(top_k), echo) for record, result in zip(batch, results)]
    try:
        texts = [record["text"] for record in batch]
    except KeyError:  # records are checked where they are read (check_record); this one was not
        raise DataError("this bundle needs records with a 'text' field") from None
    if isinstance(model, TextClassifier) and any("text_pair" in record for record in batch):
        results = [None] * len(batch)
        paired = [i for i, record in enumerate(batch) if "text_pair" in record]
        single = [i for i, record in enumerate(batch) if "text_pair" not in record]
        for indices, pairs in ((paired, [batch[i]["text_pair"] for i in paired]), (single, None)):
            if indices:
                for i, result in zip(indices, model.predict([texts[i] for i in indices], pairs)):
                    results[i] = result
    else:
        results = model.predict(texts)
    echo = ("id", "text") if echo_inputs else ("id",)
    return [_output(record, result.to_dict(top_k), echo) for record, result in zip(batch, results)]


def _output(record: dict, result: dict, echo: tuple) -> dict:
    out = {key: record[key] for key in echo if key in record}
    out.update(result)
    return out
