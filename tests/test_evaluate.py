"""edge-albert evaluate: metrics against hand-computed values, data files with bad rows, SQuAD, the command."""

import json

import numpy as np
import pytest
from tests.project_data import DATA_DIR
from click.testing import CliRunner
from tests.runtime_bundles import bundle_for, checkpoint_for

from edge_albert.cli import main
from edge_albert.errors import DataError
from edge_albert.evaluate import (
    answer_exact_match,
    answer_f1,
    classification_metrics,
    evaluate_bundle,
    load_eval_data,
    normalize_answer,
    read_squad,
    squad_metrics,
)

LABELS = ["negative", "positive"]
SQUAD_SMALL = DATA_DIR / "squad-dev-v2.0-small.json"


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- metrics


def test_classification_metrics_match_hand_computed_values():
    gold = [0, 0, 1, 1, 2, 2]
    predicted = [0, 1, 1, 1, 0, 2]
    m = classification_metrics(gold, predicted, ["a", "b", "c"])
    assert m.n == 6 and m.accuracy == pytest.approx(4 / 6)
    assert m.confusion == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]  # rows gold, columns predicted
    # a: predicted twice, right once; b: predicted 3x, right 2x; c: predicted once, right.
    assert [m.per_label[k]["precision"] for k in "abc"] == pytest.approx([1 / 2, 2 / 3, 1.0])
    assert [m.per_label[k]["recall"] for k in "abc"] == pytest.approx([1 / 2, 1.0, 1 / 2])
    assert [m.per_label[k]["f1"] for k in "abc"] == pytest.approx([1 / 2, 4 / 5, 2 / 3])
    assert [m.per_label[k]["support"] for k in "abc"] == [2, 2, 2]
    assert m.macro_precision == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m.macro_recall == pytest.approx(2 / 3)
    assert m.macro_f1 == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)


def test_never_predicted_label_scores_zero_and_absent_label_is_left_out_of_the_macro_average():
    m = classification_metrics([0, 0, 1, 1], [0, 0, 0, 0], ["neg", "pos", "unused"])
    assert m.accuracy == 0.5
    assert m.per_label["pos"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert m.per_label["neg"]["precision"] == 0.5 and m.per_label["neg"]["recall"] == 1.0
    assert m.macro_precision == pytest.approx(0.25)  # mean over neg and pos only
    assert m.macro_f1 == pytest.approx((2 / 3 + 0) / 2)
    assert m.confusion == [[2, 0, 0], [2, 0, 0], [0, 0, 0]]


def test_squad_answer_normalisation_exact_match_and_f1():
    assert normalize_answer("  The Black-Cat,  sat! ") == "blackcat sat"
    assert normalize_answer("an apple and a pear") == "apple and pear"
    assert answer_exact_match("the cat", ["Cat.", "a dog"]) == 1.0
    assert answer_exact_match("black cat", ["cat"]) == 0.0
    assert answer_f1("black cat sat", ["the cat"]) == pytest.approx(0.5)  # P 1/3, R 1
    assert answer_f1("cat cat", ["cat"]) == pytest.approx(2 / 3)  # repeated tokens count once per match
    assert answer_f1("black cat", ["dog", "black cat sat"]) == pytest.approx(0.8)  # the best gold answer
    # SQuAD v2: no gold answer (or only answers that normalise to nothing) means "no answer".
    assert answer_exact_match("", []) == 1.0 and answer_f1("", []) == 1.0
    assert answer_exact_match("", ["the"]) == 1.0
    assert answer_f1("cat", []) == 0.0 and answer_f1("", ["cat"]) == 0.0


def test_squad_metrics_split_answerable_and_unanswerable_questions():
    golds = [["Paris"], ["the 10th century", "10th century"], [], []]
    predictions = ["paris", "10th", "", "Rome"]
    m = squad_metrics(predictions, golds)
    assert m.n == 4 and m.has_answer_n == 2 and m.no_answer_n == 2
    assert m.exact_match == pytest.approx(2 / 4)  # paris, no-answer
    assert m.f1 == pytest.approx((1 + 2 / 3 + 1 + 0) / 4)  # "10th" vs "10th century": P 1, R 1/2
    assert m.has_answer_exact_match == pytest.approx(0.5) and m.has_answer_f1 == pytest.approx((1 + 2 / 3) / 2)
    assert m.no_answer_exact_match == pytest.approx(0.5) and m.no_answer_f1 == pytest.approx(0.5)


# --------------------------------------------------------------------------- data files


def test_labels_may_be_names_or_integer_ids(tmp_path):
    tsv = _write(tmp_path / "mixed.tsv", "sentence\tlabel\ngood film\tpositive\nbad film\t0\nfine\t1\n")
    data = load_eval_data(tsv, "text-classification", LABELS)
    assert [e.label for e in data.examples] == [1, 0, 1]
    assert data.text_column == "sentence"
    jsonl = _write(tmp_path / "d.jsonl", '{"text": "good", "label": 1}\n\n{"text": "bad", "label": "negative"}\n')
    data = load_eval_data(jsonl, "text-classification", LABELS)
    assert [(e.text, e.label, e.line) for e in data.examples] == [("good", 1, 1), ("bad", 0, 3)]


@pytest.mark.parametrize(
    "name, content, options, expected",
    [
        ("missing-field.tsv", "sentence\tlabel\ngood\t1\nbad\n", {}, r"missing-field.tsv:3: 1 fields but the header has 2"),
        ("empty-label.tsv", "sentence\tlabel\ngood\t1\nbad\t\n", {}, r"empty-label.tsv:3: label '' is neither"),
        ("missing-label.jsonl", '{"text": "a", "label": 0}\n{"text": "b"}\n', {}, r"missing-label.jsonl:2: no 'label' field"),
        ("null-label.jsonl", '{"text": "a", "label": null}\n', {}, r"null-label.jsonl:1: label None is neither"),
        ("unknown-label.tsv", "sentence\tlabel\ngood\t1\nmeh\tneutral\n", {},
         r"unknown-label.tsv:3: label 'neutral' is neither an index 0..1 nor one of negative, positive"),
        ("out-of-range.csv", "sentence,label\ngood,1\nbad,2\n", {}, r"out-of-range.csv:3: label '2' is neither"),
        ("empty-text.tsv", "sentence\tlabel\ngood\t1\n   \t0\n", {}, r"empty-text.tsv:3: field 'sentence' is empty"),
        ("wrong-text-column.tsv", "review\tlabel\ngood\t1\n", {},
         r"wrong-text-column.tsv:1: no 'sentence' or 'text' column \(columns: review, label\); pass text_column"),
        ("header-after-blank-line.tsv", "\nreview\tlabel\ngood\t1\n", {},
         r"header-after-blank-line.tsv:2: no 'sentence' or 'text' column"),
        ("wrong-label-column.tsv", "sentence\tstars\ngood\t1\n", {},
         r"wrong-label-column.tsv:1: no column 'label' \(columns: sentence, stars\); pass label_column"),
        ("wrong-given-column.csv", "sentence,label\ngood,1\n", {"text_column": "review"},
         r"wrong-given-column.csv:1: no column 'review'"),
        ("wrong-pair-column.tsv", "sentence\tlabel\ngood\t1\n", {"text_pair_column": "hypothesis"},
         r"wrong-pair-column.tsv:1: no column 'hypothesis'.*pass text_pair_column"),
        ("jsonl-text-missing.jsonl", '{"text": "a", "label": 0}\n{"txt": "b", "label": 1}\n', {},
         r"jsonl-text-missing.jsonl:2: no 'text' field"),
        ("bad-json.jsonl", '{"text": "a", "label": 0}\n{"text": \n', {}, r"bad-json.jsonl:2: not valid JSON"),
        ("header-only.tsv", "sentence\tlabel\n", {}, r"header-only.tsv: no examples"),
    ],
)
def test_bad_rows_are_errors_with_line_numbers(tmp_path, name, content, options, expected):
    path = _write(tmp_path / name, content)
    with pytest.raises(DataError, match=expected):
        load_eval_data(path, "text-classification", LABELS, **options)


def test_squad_file_is_read_with_no_answer_questions():
    questions = read_squad(SQUAD_SMALL)
    assert len(questions) == 14
    assert sum(q.is_impossible for q in questions) == 6
    assert all(q.answers == () for q in questions if q.is_impossible)
    first = questions[0]
    assert first.question == "In what country is Normandy located?" and "France" in first.answers
    assert first.line > 1  # where its id sits in the file, for messages


@pytest.mark.parametrize(
    "qa, expected",
    [
        ({"id": "q1", "answers": [{"text": "x", "answer_start": 0}]}, r"bad.json:\d+: .*qas\[0\] \(id q1\) has an empty or missing \"question\""),
        ({"id": "q1", "question": "Why?", "answers": []}, r"bad.json:\d+: .* has no answer but is not marked \"is_impossible\""),
        ({"id": "q1", "question": "Why?", "answers": "x"}, r"\"answers\" must be a list"),
        ({"question": "Why?", "answers": []}, r"bad.json: data\[0\].paragraphs\[0\].qas\[0\] has no \"id\""),
    ],
)
def test_bad_squad_entries_are_named(tmp_path, qa, expected):
    document = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": "Some context.", "qas": [qa]}]}]}
    path = _write(tmp_path / "bad.json", json.dumps(document, indent=1))
    with pytest.raises(DataError, match=expected):
        read_squad(path)


def test_squad_that_is_not_json_names_the_line(tmp_path):
    path = _write(tmp_path / "broken.json", '{"data": [\n  {"paragraphs": \n')
    with pytest.raises(DataError, match=r"broken.json:3: not valid JSON"):
        read_squad(path)
    path = _write(tmp_path / "list.json", "[1, 2]")
    with pytest.raises(DataError, match="not SQuAD-format JSON"):
        read_squad(path)


# --------------------------------------------------------------------------- bundles


def _small_tsv(tmp_path):
    rows = [("a gorgeous, witty, seductive movie.", "positive"), ("the plot is thin and the acting is worse.", "0"),
            ("ok", "1"), ("an utterly forgettable, overlong mess.", "negative"), ("hello, my dog is cute", "1")]
    return _write(tmp_path / "small.tsv", "sentence\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in rows))


def test_classifier_bundle_metrics_agree_with_its_own_predictions(tmp_path):
    bundle = bundle_for(tmp_path.parent, "text-classification")
    report = evaluate_bundle(bundle, _small_tsv(tmp_path))
    gold = [1, 0, 1, 0, 1]
    from edge_albert.tasks import TextClassifier

    predicted = [LABELS.index(p.label) for p in TextClassifier.load(bundle).predict(
        [line.split("\t")[0] for line in (tmp_path / "small.tsv").read_text().splitlines()[1:]])]
    assert report.predictions == predicted
    assert report.metrics.accuracy == pytest.approx(np.mean(np.array(gold) == np.array(predicted)))
    assert report.metrics.confusion == classification_metrics(gold, predicted, LABELS).confusion
    assert report.n == 5 and report.reference is None and report.agreement is None


def test_qa_bundle_on_the_small_squad_file(tmp_path):
    bundle = bundle_for(tmp_path.parent, "question-answering")
    report = evaluate_bundle(bundle, SQUAD_SMALL)
    questions = read_squad(SQUAD_SMALL)
    assert report.n == 14 and len(report.predictions) == 14
    assert report.settings["handle_impossible_answer"] is True  # the file has SQuAD v2 no-answer questions
    # A random model's numbers mean nothing; the machinery must score exactly what was predicted.
    expected = squad_metrics(report.predictions, [q.answers for q in questions])
    assert report.metrics == expected
    assert report.metrics.no_answer_n == 6 and report.metrics.has_answer_n == 8
    for prediction, question in zip(report.predictions, questions):
        assert prediction == "" or prediction in question.context


def test_reference_agreement_of_an_fp32_bundle_is_complete(tmp_path):
    bundle = bundle_for(tmp_path.parent, "text-classification")
    checkpoint = checkpoint_for(tmp_path.parent, "text-classification")
    from edge_albert.converters.accuracy_gate import evaluate_against_reference

    report = evaluate_against_reference(bundle, _small_tsv(tmp_path), reference_checkpoint=checkpoint)
    assert report.agreement == 1.0
    assert report.reference.predictions == report.predictions
    assert report.reference.metrics.accuracy == report.metrics.accuracy
    assert report.settings["reference_is_bundle_source"] is True


def test_evaluate_command_prints_the_report_and_writes_json(tmp_path):
    bundle = bundle_for(tmp_path.parent, "text-classification")
    out = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["evaluate", str(bundle), str(_small_tsv(tmp_path)), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "confusion matrix" in result.output
    report = json.loads(out.read_text())
    assert report["n"] == 5 and len(report["predictions"]) == 5
    # a percentage with two decimals, as convert prints it (80.96%), not a fraction
    assert f"accuracy         {100 * report['metrics']['accuracy']:.2f}%" in result.output.splitlines()
    assert set(report["predictions"]) <= set(LABELS)
    assert sum(map(sum, report["metrics"]["confusion"])) == 5


def test_evaluate_command_reports_a_bad_row_as_one_line(tmp_path):
    bundle = bundle_for(tmp_path.parent, "text-classification")
    bad = _write(tmp_path / "bad.tsv", "sentence\tlabel\ngood\t1\nmeh\tneutral\n")
    result = CliRunner().invoke(main, ["evaluate", str(bundle), str(bad)])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "bad.tsv:3: label 'neutral'" in result.output
    assert "Traceback" not in result.output


def test_evaluate_command_on_a_qa_bundle_with_its_reference(tmp_path):
    bundle = bundle_for(tmp_path.parent, "question-answering")
    checkpoint = checkpoint_for(tmp_path.parent, "question-answering")
    out = tmp_path / "qa.json"
    result = CliRunner().invoke(main, ["evaluate", str(bundle), str(SQUAD_SMALL), "--reference", str(checkpoint),
                                       "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "exact match" in result.output and "unanswerable   6 questions" in result.output
    report = json.loads(out.read_text())
    assert report["agreement"] == 1.0  # fp32 bundle and PyTorch pick the same spans
    assert report["reference"]["metrics"] == report["metrics"]
    assert len(report["predictions"]) == 14
