"""`edge-albert predict`: the streaming helpers directly, the command surface through CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_albert import DataError, QuestionAnswerer, TextClassifier
from edge_albert.cli import main
from edge_albert.predict import predict_records, records_from_lines
from tests.runtime_bundles import bundle_for


@pytest.fixture(scope="session")
def bundle_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("predict-bundles")


@pytest.fixture(scope="module")
def classifier_bundle(bundle_root) -> Path:
    return bundle_for(bundle_root, "text-classification")


def json_lines(output: str) -> list:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_records_from_plain_lines_keep_empty_lines():
    records = list(records_from_lines(["one\n", "\n", "three\r\n", "   \n"], jsonl=False))
    assert records == [{"text": "one"}, {"text": ""}, {"text": "three"}, {"text": "   "}]


def test_records_from_jsonl_reject_bad_lines_with_their_number():
    good = list(records_from_lines(['{"text": "a"}\n', "\n", '{"question": "q", "context": "c", "id": 3}\n'], True))
    assert good == [{"text": "a"}, {"question": "q", "context": "c", "id": 3}]
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        list(records_from_lines(['{"text": "a"}', "{oops"], True))
    with pytest.raises(DataError, match="line 1 has neither"):
        list(records_from_lines(['{"txt": "a"}'], True))
    with pytest.raises(DataError, match="must be a string"):
        list(records_from_lines(['{"text": 5}'], True))


def test_prediction_streams_with_bounded_reads(classifier_bundle):
    """The first result arrives after one batch has been read, not after the whole input."""
    model = TextClassifier.load(classifier_bundle)
    consumed = []

    def endless_lines():
        index = 0
        while True:
            consumed.append(index)
            yield f"text number {index}\n"
            index += 1

    results = predict_records(model, records_from_lines(endless_lines(), jsonl=False), batch_size=8)
    first = next(results)
    assert first["text"] == "text number 0" and len(consumed) <= 9
    for _ in range(20):
        next(results)
    assert len(consumed) <= 8 * 3 + 1


def test_predict_texts_as_arguments_with_top_k(classifier_bundle):
    result = CliRunner().invoke(main, ["predict", str(classifier_bundle), "great movie", "", "--top-k", "1",
                                       "--threads", "1"])
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stdout)
    assert [line["text"] for line in lines] == ["great movie", ""]
    for line in lines:
        assert line["label"] in ("negative", "positive") and list(line["scores"]) == [line["label"]]
        assert line["truncated"] is False


def test_predict_stdin_lines_match_the_library(classifier_bundle):
    texts = ["first line", "", "a very long line " * 40, "naïve café 😀"]
    result = CliRunner().invoke(main, ["predict", str(classifier_bundle), "--batch-size", "3"],
                                input="".join(t + "\n" for t in texts))
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stdout)
    expected = TextClassifier.load(classifier_bundle).predict(texts)
    assert [line["text"] for line in lines] == texts
    for line, prediction in zip(lines, expected):
        assert line["label"] == prediction.label
        assert line["scores"] == pytest.approx(prediction.scores, abs=1e-6)
        assert line["truncated"] == prediction.truncated
    assert lines[2]["truncated"] is True


def test_predict_jsonl_with_pairs_and_ids(classifier_bundle):
    records = [{"text": "a", "id": "x1"}, {"text": "premise", "text_pair": "hypothesis", "id": "x2"}]
    result = CliRunner().invoke(main, ["predict", str(classifier_bundle), "--jsonl"],
                                input="\n".join(json.dumps(r) for r in records) + "\n")
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stdout)
    assert [line["id"] for line in lines] == ["x1", "x2"]
    paired = TextClassifier.load(classifier_bundle).predict(["premise"], ["hypothesis"])[0]
    assert lines[1]["scores"] == pytest.approx(paired.scores, abs=1e-6)


def test_predict_question_answering_jsonl(bundle_root):
    bundle = bundle_for(bundle_root, "question-answering")
    context = "Anne went to Paris in 1999 to study painting."
    records = [{"question": "Where did Anne go?", "context": context, "id": 1}, {"question": "", "context": ""}]
    result = CliRunner().invoke(main, ["predict", str(bundle), "--jsonl"],
                                input="\n".join(json.dumps(r) for r in records))
    assert result.exit_code == 0, result.output
    first, second = json_lines(result.stdout)
    expected = QuestionAnswerer.load(bundle).predict("Where did Anne go?", context)[0]
    assert (first["id"], first["start"], first["end"], first["answer"]) == (1, expected.start, expected.end,
                                                                           expected.answer)
    assert context[first["start"]:first["end"]] == first["answer"]
    assert second["no_answer"] is True and second["answer"] == ""
    plain = CliRunner().invoke(main, ["predict", str(bundle)], input="just a line\n")
    assert plain.exit_code == 1 and "needs records with 'question' and 'context'" in plain.stderr


def test_predict_errors_are_one_line(classifier_bundle, tmp_path):
    runner = CliRunner()
    bad_json = runner.invoke(main, ["predict", str(classifier_bundle), "--jsonl"], input='{"text": "a"}\n[1, 2]\n')
    assert bad_json.exit_code == 1 and "line 2 is a JSON list" in bad_json.stderr
    assert [line["text"] for line in json_lines(bad_json.stdout)] == ["a"]  # records before it still answered
    missing = runner.invoke(main, ["predict", str(tmp_path / "nothing"), "x"])
    assert missing.exit_code == 1 and missing.stderr.startswith("error: ") and "Traceback" not in missing.output
    backend = runner.invoke(main, ["predict", str(classifier_bundle), "x", "--backend", "nope"])
    assert backend.exit_code == 1 and "unknown backend 'nope'" in backend.stderr


def _predict_process(bundle: Path, stdin):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    return subprocess.Popen([sys.executable, "-m", "edge_albert.cli", "predict", str(bundle)], stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(root)))


def test_predict_without_texts_at_a_terminal_says_it_reads_stdin(classifier_bundle):
    """A pseudo-terminal as stdin: the hint comes before any input; piped stdin gets no hint."""
    import os
    import pty
    import subprocess

    from edge_albert.cli import STDIN_HINT

    leader, follower = pty.openpty()
    try:
        typed = _predict_process(classifier_bundle, follower)
        os.close(follower)
        os.write(leader, b"a fine film\n\x04")  # one line, then Ctrl-D at the start of the next
        out, err = typed.communicate(timeout=300)
    finally:
        os.close(leader)
    assert typed.returncode == 0, err
    assert STDIN_HINT in err.splitlines()
    assert [line["text"] for line in json_lines(out)] == ["a fine film"]

    piped = _predict_process(classifier_bundle, subprocess.PIPE)
    out, err = piped.communicate("a fine film\n", timeout=300)
    assert piped.returncode == 0, err
    assert STDIN_HINT not in err and [line["text"] for line in json_lines(out)] == ["a fine film"]


@pytest.mark.parametrize("command", ["predict", "evaluate", "inspect"])
def test_a_checkpoint_directory_given_as_a_bundle_says_convert_it_first(tiny_classifier_checkpoint, tmp_path, command):
    data = tmp_path / "dev.tsv"
    data.write_text("sentence\tlabel\nfine\tpositive\n")
    args = {"predict": ["x"], "evaluate": [str(data)], "inspect": []}[command]
    result = CliRunner().invoke(main, [command, str(tiny_classifier_checkpoint), *args])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"error: {tiny_classifier_checkpoint} has no manifest.json: this is a Hugging Face "
                                     f"checkpoint; convert it first: edge-albert convert {tiny_classifier_checkpoint} "
                                     "-o BUNDLE")
