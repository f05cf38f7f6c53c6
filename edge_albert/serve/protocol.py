"""The predict request format and its checks, shared by the local server and the Ray Serve replicas.

A request body is one JSON object:
  {"text": "..."} or {"text": "...", "text_pair": "..."} or {"question": "...", "context": "..."}
      one record; the answer has "result"
  {"texts": ["...", ...]} or {"records": [{...}, ...]}
      a batch; the answer has "results", in request order
and optionally "top_k" (keep the k best labels' scores). Records are checked with the same
functions, and so refused with the same one-line messages, as `edge-albert predict --jsonl`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from ..errors import DataError, EdgeAlbertError
from ..predict import check_record, parse_json, predict_batch
from ..tasks import BundleModel


class RequestTooLarge(EdgeAlbertError):
    """A request over the body-size or text-count limit (HTTP 413)."""


@dataclass
class PredictRequest:
    records: List[dict]
    single: bool
    top_k: Optional[int] = None


def parse_predict_request(body: bytes, task: str, max_texts: int) -> PredictRequest:
    """Parse and check a predict body for a bundle of `task`; DataError (400) or RequestTooLarge (413)."""
    payload = parse_json(body, "request body")
    if not isinstance(payload, dict):
        raise DataError(f"request body is a JSON {type(payload).__name__}, expected an object")
    top_k = payload.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise DataError("field 'top_k' must be a whole number of at least 1")
    if "texts" in payload or "records" in payload:
        records = _batch_records(payload)
        if len(records) > max_texts:
            raise RequestTooLarge(f"{len(records)} records in one request; the limit is {max_texts} (--max-texts)")
        for number, record in enumerate(records, start=1):
            check_record(record, f"record {number}", task)
        return PredictRequest(records, single=False, top_k=top_k)
    record = {key: value for key, value in payload.items() if key != "top_k"}
    check_record(record, "request body", task)
    return PredictRequest([record], single=True, top_k=top_k)


def _batch_records(payload: dict) -> List[dict]:
    if "texts" in payload and "records" in payload:
        raise DataError("give either 'texts' or 'records', not both")
    if "texts" in payload:
        texts = payload["texts"]
        if not isinstance(texts, list):
            raise DataError(f"field 'texts' must be a list of strings, not {type(texts).__name__}")
        for number, text in enumerate(texts, start=1):
            if not isinstance(text, str):
                raise DataError(f"record {number}: field 'text' must be a string, not {type(text).__name__}")
        return [{"text": text} for text in texts]
    records = payload["records"]
    if not isinstance(records, list):
        raise DataError(f"field 'records' must be a list of objects, not {type(records).__name__}")
    return records


def run_batch(model: BundleModel, records: List[dict]) -> List[dict]:
    """Results for a micro-batch, without echoing the request's texts back (ids are kept)."""
    return predict_batch(model, records, top_k=None, echo_inputs=False)


def keep_top_k(result: dict, top_k: Optional[int]) -> dict:
    """Cut a classification result's scores (ranked best first) to the request's top_k."""
    if top_k is None or "scores" not in result:
        return result
    return {**result, "scores": dict(list(result["scores"].items())[:top_k])}


def response_body(model_name: str, request: PredictRequest, results: List[dict], latency_ms: float) -> dict:
    results = [keep_top_k(result, request.top_k) for result in results]
    body = {"model": model_name}
    if request.single:
        body["result"] = results[0]
    else:
        body["results"] = results
    body["latency_ms"] = round(latency_ms, 3)
    return body
