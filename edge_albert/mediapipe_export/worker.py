"""Runs inside the MediaPipe interpreter: writes metadata and classifies texts with MediaPipe's own code.

mediapipe 0.10.21 pins numpy < 2 and protobuf 4, which edge-albert's TensorFlow 2.21 / numpy 2
environment cannot share, so this file is run as a script by that interpreter (a separate venv)
and imports nothing from edge_albert: standard library and mediapipe only. It reads one JSON
request on stdin and writes one JSON answer on stdout.

  {"job": "write", "model": PATH, "spiece": PATH, "labels": [...], "inputs": [ids, mask, segment], "out": PATH}
  {"job": "classify", "model": PATH, "texts": [...], "repeats": N}
"""

import json
import sys
import time


def write(request):
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer, text_classifier

    with open(request["model"], "rb") as handle:
        model = bytearray(handle.read())
    labels = metadata_writer.Labels().add(list(request["labels"]))
    ids, mask, segment = request["inputs"]
    writer = text_classifier.MetadataWriter.create_for_bert_model(
        model, metadata_writer.SentencePieceTokenizer(request["spiece"]), labels,
        ids_name=ids, mask_name=mask, segment_name=segment)
    model_with_metadata, _ = writer.populate()
    with open(request["out"], "wb") as handle:
        handle.write(model_with_metadata)
    return {"bytes": len(model_with_metadata)}


def classify(request):
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.text import text_classifier

    options = text_classifier.TextClassifierOptions(base_options=BaseOptions(model_asset_path=request["model"]))
    classifier = text_classifier.TextClassifier.create_from_options(options)
    try:
        results, seconds = [], []
        for text in request["texts"]:
            timings = []
            for _ in range(max(1, int(request.get("repeats", 1)))):
                started = time.perf_counter()
                result = classifier.classify(text)
                timings.append(time.perf_counter() - started)
            categories = result.classifications[0].categories
            scores = [0.0] * len(categories)
            for category in categories:
                scores[category.index] = float(category.score)
            results.append(scores)
            seconds.append(sorted(timings)[len(timings) // 2])
    finally:
        classifier.close()  # 1.2.x raises in __del__ at exit otherwise
    return {"scores": results, "seconds": seconds}


def main():
    request = json.load(sys.stdin)
    answer = {"write": write, "classify": classify}[request["job"]](request)
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
