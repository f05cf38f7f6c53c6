"""The OpenAPI 3.1 description served at /openapi.json, written out by hand for the few routes."""

from __future__ import annotations

from typing import Mapping

from ..version import __version__

_ERROR = {"type": "object", "properties": {"error": {"type": "string", "description": "one line, as the CLI prints it"}},
          "required": ["error"]}
_RECORD = {
    "type": "object",
    "description": "text (+ text_pair) for classification, token classification and features; "
                   "question + context for question answering; an optional id is echoed back",
    "properties": {"text": {"type": "string"}, "text_pair": {"type": "string"}, "question": {"type": "string"},
                   "context": {"type": "string"}, "id": {}},
}
_PREDICT_REQUEST = {
    "oneOf": [
        {"$ref": "#/components/schemas/Record"},
        {"type": "object", "properties": {"texts": {"type": "array", "items": {"type": "string"}}}, "required": ["texts"]},
        {"type": "object", "properties": {"records": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}}},
         "required": ["records"]},
    ],
    "description": "one record, or a batch as texts or records; every form takes an optional top_k (integer >= 1)",
}
_RESULT = {
    "type": "object",
    "description": "text-classification: label, score, scores, truncated; question-answering: answer, start, end, "
                   "score, no_answer, null_score, truncated; token-classification: words, truncated; "
                   "feature-extraction: pooled, num_tokens, truncated",
}
_PREDICT_RESPONSE = {
    "type": "object",
    "properties": {"model": {"type": "string"}, "result": {"$ref": "#/components/schemas/Result"},
                   "results": {"type": "array", "items": {"$ref": "#/components/schemas/Result"}},
                   "latency_ms": {"type": "number", "description": "time in the queue and the model"}},
    "required": ["model", "latency_ms"],
}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict:
    words = {400: "invalid JSON or fields", 401: "missing or wrong bearer token", 404: "no such model",
             413: "body or record count over the limit", 503: "queue full or not ready (see Retry-After)",
             504: "no result within the timeout"}
    return {str(status): _json({"$ref": "#/components/schemas/Error"}, words[status]) for status in statuses}


def openapi_schema(served: Mapping[str, object], auth: bool) -> dict:
    """The schema for this server's models (their names are the `name` enum)."""
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "enum": sorted(served)}}
    secured = [{"bearer": []}] if auth else []
    schema = {
        "openapi": "3.1.0",
        "info": {"title": "edge-albert serve", "version": __version__,
                 "description": "ALBERT bundles behind a JSON API with micro-batching and backpressure."},
        "paths": {
            "/": {"get": {"summary": "A page to try the models in a browser",
                          "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}}},
            "/healthz": {"get": {"summary": "Alive", "responses": {"200": _json({"type": "object"}, "the process answers")}}},
            "/readyz": {"get": {"summary": "Every model loaded and answering a probe", "security": secured,
                                "responses": {"200": _json({"type": "object"}, "ready"), **_errors(401, 503, 504)}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "security": secured,
                                 "responses": {"200": {"description": "Prometheus text format",
                                                       "content": {"text/plain": {}}}, **_errors(401)}}},
            "/openapi.json": {"get": {"summary": "This document", "security": secured,
                                      "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1"), **_errors(401)}}},
            "/v1/models": {"get": {"summary": "The served models: name, task, labels, predict path", "security": secured,
                                   "responses": {"200": _json({"type": "object"}, "models"), **_errors(401)}}},
            "/v1/models/{name}": {"get": {"summary": "A model's bundle manifest", "parameters": [name],
                                          "security": secured,
                                          "responses": {"200": _json({"type": "object"}, "manifest.json"),
                                                        **_errors(401, 404)}}},
            "/v1/models/{name}/predict": {"post": {
                "summary": "Predict one record or a batch", "parameters": [name], "security": secured,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/PredictRequest"}}}},
                "responses": {"200": _json({"$ref": "#/components/schemas/PredictResponse"}, "results in request order"),
                              **_errors(400, 401, 404, 413, 503, 504)}}},
        },
        "components": {
            "schemas": {"Error": _ERROR, "Record": _RECORD, "PredictRequest": _PREDICT_REQUEST, "Result": _RESULT,
                        "PredictResponse": _PREDICT_RESPONSE},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    return schema
