"""Task accuracy of a bundle (or any task model) on a labelled file, optionally against a reference.

Text classification: accuracy, macro precision/recall/F1 and the confusion matrix on a TSV, CSV
or JSONL file (labels as names or integer ids). Question answering: SQuAD exact match and F1 on
SQuAD-format JSON, with SQuAD v2 no-answer handling. With a reference checkpoint, the same texts
go through the PyTorch model with the same tokenization and decoding, and the report says how
often the two agree.

Only numpy, the runtime and the data reader are imported here, so `edge-albert evaluate` runs on
a device. The PyTorch reference and convert's accuracy gate live with the converter
(edge_albert/converters/accuracy_gate.py) and hand their reference in through `evaluate_bundle`.
"""

from __future__ import annotations

import collections
import json
import re
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .bundle import sha256_of_file
from .data import DEFAULT_LABEL_COLUMN, TEXT_COLUMN_CANDIDATES, Example, data_columns, read_examples
from .device_options import DEFAULT_BATCH_SIZE
from .early_exit import call_distribution, describe_calls
from .errors import DataError, EdgeAlbertError
from .report import format_table
from .tasks import BundleModel, QuestionAnswerer, TextClassifier, load_model
from .tokenizer import clean_text

EVALUATED_TASKS = ("text-classification", "question-answering")
Progress = Callable[[str], None]
# Evaluates the reference on the same data as the model (given after its exit value is set).
ReferenceEvaluator = Callable[[BundleModel, "EvalData"], "EvaluationReport"]


# --------------------------------------------------------------------------- metrics


@dataclass
class ClassificationMetrics:
    """Single-label classification metrics; `confusion[gold][predicted]` counts examples."""

    labels: List[str]
    n: int
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    per_label: Dict[str, Dict[str, float]]
    confusion: List[List[int]]

    @property
    def headline(self) -> float:
        return self.accuracy

    def to_dict(self) -> dict:
        return asdict(self)


def classification_metrics(gold: Sequence[int], predicted: Sequence[int], labels: Sequence[str]) -> ClassificationMetrics:
    """Accuracy, per-label and macro precision/recall/F1, confusion matrix (rows gold, columns predicted).

    A label that is never predicted has precision 0 (and one never in the gold labels recall 0),
    as scikit-learn's zero_division=0; the macro average runs over the labels that occur in the
    gold labels or the predictions, as scikit-learn's default does.
    """
    gold, predicted = np.asarray(gold, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    if gold.shape != predicted.shape:
        raise ValueError(f"{gold.size} gold labels but {predicted.size} predictions")
    if gold.size == 0:
        raise DataError("no examples to evaluate")
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (gold, predicted), 1)
    per_label, present = {}, []
    for index, label in enumerate(labels):
        true_positive = int(confusion[index, index])
        predicted_count, support = int(confusion[:, index].sum()), int(confusion[index, :].sum())
        precision = true_positive / predicted_count if predicted_count else 0.0
        recall = true_positive / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
        if predicted_count or support:
            present.append(label)
    return ClassificationMetrics(
        labels=list(labels),
        n=int(gold.size),
        accuracy=float((gold == predicted).mean()),
        macro_precision=float(np.mean([per_label[label]["precision"] for label in present])),
        macro_recall=float(np.mean([per_label[label]["recall"] for label in present])),
        macro_f1=float(np.mean([per_label[label]["f1"] for label in present])),
        per_label=per_label,
        confusion=confusion.tolist(),
    )


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(char for char in text if char not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def answer_exact_match(prediction: str, gold_answers: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold answer ("" = no answer)."""
    return float(max(normalize_answer(prediction) == normalize_answer(gold) for gold in _golds(gold_answers)))


def answer_f1(prediction: str, gold_answers: Sequence[str]) -> float:
    """Best token-overlap F1 over the gold answers; against a no-answer either side must be empty."""
    return max(_token_f1(prediction, gold) for gold in _golds(gold_answers))


def _golds(gold_answers: Sequence[str]) -> List[str]:
    # As the SQuAD v2 script: answers that normalise to nothing do not count; none left = no answer.
    golds = [gold for gold in gold_answers if normalize_answer(gold)]
    return golds or [""]


def _token_f1(prediction: str, gold: str) -> float:
    predicted_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted_tokens or not gold_tokens:
        return float(predicted_tokens == gold_tokens)
    common = collections.Counter(predicted_tokens) & collections.Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted_tokens), overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


@dataclass
class QAMetrics:
    """SQuAD exact match and F1 (0..1), overall and split into answerable and unanswerable questions."""

    n: int
    exact_match: float
    f1: float
    has_answer_n: int
    has_answer_exact_match: Optional[float]
    has_answer_f1: Optional[float]
    no_answer_n: int
    no_answer_exact_match: Optional[float]
    no_answer_f1: Optional[float]

    @property
    def headline(self) -> float:
        return self.f1

    def to_dict(self) -> dict:
        return asdict(self)


def squad_metrics(predictions: Sequence[str], gold_answers: Sequence[Sequence[str]]) -> QAMetrics:
    """Exact match and F1 of predicted answer texts ("" = no answer) against each question's gold answers."""
    if len(predictions) != len(gold_answers):
        raise ValueError(f"{len(predictions)} predictions but {len(gold_answers)} questions")
    if not predictions:
        raise DataError("no questions to evaluate")
    exact = np.array([answer_exact_match(p, g) for p, g in zip(predictions, gold_answers)])
    f1 = np.array([answer_f1(p, g) for p, g in zip(predictions, gold_answers)])
    answerable = np.array([_golds(g) != [""] for g in gold_answers])

    def mean(values: np.ndarray, where: np.ndarray) -> Optional[float]:
        return float(values[where].mean()) if where.any() else None

    return QAMetrics(
        n=len(predictions), exact_match=float(exact.mean()), f1=float(f1.mean()),
        has_answer_n=int(answerable.sum()), has_answer_exact_match=mean(exact, answerable),
        has_answer_f1=mean(f1, answerable), no_answer_n=int((~answerable).sum()),
        no_answer_exact_match=mean(exact, ~answerable), no_answer_f1=mean(f1, ~answerable),
    )


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class SquadQuestion:
    """One SQuAD question; `line` is where its id appears in the file (0 if unknown)."""

    id: str
    question: str
    context: str
    answers: Tuple[str, ...]
    is_impossible: bool
    line: int = 0


@dataclass
class EvalData:
    """A labelled file read and checked once: classification examples or SQuAD questions."""

    path: Path
    task: str
    sha256: str
    examples: List[Example] = field(default_factory=list)
    questions: List[SquadQuestion] = field(default_factory=list)
    text_column: Optional[str] = None
    text_pair_column: Optional[str] = None
    label_column: Optional[str] = None

    def __len__(self) -> int:
        return len(self.examples) if self.task == "text-classification" else len(self.questions)

    @property
    def has_no_answer_questions(self) -> bool:
        return any(q.is_impossible for q in self.questions)

    def texts(self, limit: Optional[int] = None) -> Tuple[List[str], List[Optional[str]]]:
        """The first `limit` inputs as (texts, second texts): for calibration."""
        if self.task == "question-answering":
            chosen = self.questions[:limit]
            return [q.question for q in chosen], [q.context for q in chosen]
        chosen = self.examples[:limit]
        return [e.text for e in chosen], [e.text_pair for e in chosen]


def load_eval_data(
    path,
    task: str,
    labels: Sequence[str],
    text_column: Optional[str] = None,
    text_pair_column: Optional[str] = None,
    label_column: str = DEFAULT_LABEL_COLUMN,
) -> EvalData:
    """Read a labelled file for `task`; every bad row is a DataError naming the file and line."""
    path = Path(path)
    if task not in EVALUATED_TASKS:
        raise EdgeAlbertError(f"evaluation supports {' and '.join(EVALUATED_TASKS)} models, not {task}")
    if not path.is_file():
        raise DataError(f"{path}: no such file")

    digest = sha256_of_file(path)
    if task == "question-answering":
        return EvalData(path, task, digest, questions=read_squad(path))
    line, columns = data_columns(path)
    if text_column is None:
        text_column = next((c for c in TEXT_COLUMN_CANDIDATES if c in (columns or TEXT_COLUMN_CANDIDATES)), None)
        if text_column is None:
            raise DataError(f"{path}:{line}: no {' or '.join(map(repr, TEXT_COLUMN_CANDIDATES))} column "
                            f"(columns: {', '.join(columns)}); pass {{text_column}} NAME", options=("text_column",))
    if columns is not None:
        for option, column in (("text_column", text_column), ("text_pair_column", text_pair_column),
                               ("label_column", label_column)):
            if column is not None and column not in columns:
                raise DataError(f"{path}:{line}: no column {column!r} (columns: {', '.join(columns)}); "
                                f"pass {{{option}}} NAME", options=(option,))
    examples = read_examples(path, text_column=text_column, label_column=label_column,
                             pair_column=text_pair_column, labels=list(labels))
    return EvalData(path, task, digest, examples=examples, text_column=text_column, text_pair_column=text_pair_column,
                    label_column=label_column)


def read_squad(path) -> List[SquadQuestion]:
    """SQuAD v1.1/v2.0 JSON -> questions; a malformed entry is a DataError naming its line or place."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason})") from None
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); question answering needs "
                        "SQuAD-format JSON ({\"data\": [{\"paragraphs\": [...]}]})") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to be SQuAD data") from None
    except ValueError:  # an integer beyond Python's int-string digit limit
        raise DataError(f"{path}: holds a number too long to read; SQuAD answer_start values are small integers") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataError(f"{path}: not SQuAD-format JSON: expected an object with a \"data\" list of articles")
    questions: List[SquadQuestion] = []
    for a, article in enumerate(document["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(f"{path}: data[{a}] has no \"paragraphs\" list")
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str) \
                    or not paragraph["context"].strip():
                raise DataError(f"{path}: {where} has no \"context\" text")
            if not isinstance(paragraph.get("qas"), list):
                raise DataError(f"{path}: {where} has no \"qas\" list")
            for q, qa in enumerate(paragraph["qas"]):
                questions.append(_squad_question(qa, paragraph["context"], raw, path, f"{where}.qas[{q}]"))
    if not questions:
        raise DataError(f"{path}: no questions")
    seen = collections.Counter(q.id for q in questions)
    duplicates = [qid for qid, count in seen.items() if count > 1]
    if duplicates:
        raise DataError(f"{path}: question id {duplicates[0]!r} appears {seen[duplicates[0]]} times")
    return questions


def _squad_question(qa, context: str, raw: str, path: Path, where: str) -> SquadQuestion:
    qid = qa.get("id") if isinstance(qa, dict) else None
    line = _line_of(raw, json.dumps(qid)) if isinstance(qid, str) else 0
    place = f"{path}:{line}: {where} (id {qid})" if line else f"{path}: {where}"
    if not isinstance(qa, dict) or not isinstance(qid, str) or not qid:
        raise DataError(f"{place} has no \"id\"")
    question = qa.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{place} has an empty or missing \"question\"")
    impossible = qa.get("is_impossible", False)
    if not isinstance(impossible, bool):
        raise DataError(f"{place}: \"is_impossible\" must be true or false")
    answers = qa.get("answers", [])
    if not isinstance(answers, list) or not all(isinstance(x, dict) and isinstance(x.get("text"), str) for x in answers):
        raise DataError(f"{place}: \"answers\" must be a list of {{\"text\": ..., \"answer_start\": ...}}")
    texts = tuple(x["text"] for x in answers)
    if not impossible and not any(normalize_answer(t) for t in texts):
        raise DataError(f"{place} has no answer but is not marked \"is_impossible\": true")

    return SquadQuestion(clean_text(qid), clean_text(question), clean_text(context),
                         () if impossible else tuple(clean_text(t) for t in texts), impossible, line)


def _line_of(raw: str, needle: str) -> int:
    index = raw.find(needle)
    return raw.count("\n", 0, index) + 1 if index >= 0 else 0


# --------------------------------------------------------------------------- evaluation


@dataclass
class EvaluationReport:
    """What a model scored on a file; `predictions` are label indices or answer texts, in file order."""

    task: str
    data: str
    data_sha256: str
    n: int
    metrics: Union[ClassificationMetrics, QAMetrics]
    predictions: list = field(repr=False)
    model: str = ""
    reference: Optional["EvaluationReport"] = None
    agreement: Optional[float] = None  # share of predictions equal to the reference's
    settings: dict = field(default_factory=dict)
    # Early-exit models: the rule in force and how many layer calls the examples ran.
    early_exit: Optional[dict] = None

    @property
    def metric_name(self) -> str:
        return "accuracy" if self.task == "text-classification" else "f1"

    @property
    def headline(self) -> float:
        return self.metrics.headline

    def to_dict(self, with_predictions: bool = True) -> dict:
        result = {"task": self.task, "data": self.data, "data_sha256": self.data_sha256, "n": self.n, "model": self.model,
                  "metrics": self.metrics.to_dict(), "settings": self.settings}
        if self.early_exit is not None:
            result["early_exit"] = self.early_exit
        if self.reference is not None:
            result["reference"] = self.reference.to_dict(with_predictions=False)
            result["agreement"] = self.agreement
        if with_predictions:
            result["predictions"] = self._named_predictions()
        return result

    def _named_predictions(self) -> list:
        if self.task == "text-classification":
            labels = self.metrics.labels
            return [labels[i] for i in self.predictions]
        return list(self.predictions)


def evaluate_model(model: BundleModel, data: EvalData, reference: Optional[EvaluationReport] = None,
                   name: str = "") -> EvaluationReport:
    """Run `model` (a TextClassifier or QuestionAnswerer) on `data`; agreement with `reference` if given."""
    if model.task != data.task:
        raise EdgeAlbertError(f"the data was read for {data.task}, the model is {model.task}")
    settings: dict = {"max_seq_len": model.max_seq_len}
    early_exit = None
    if isinstance(model, TextClassifier):
        if model.bundle.manifest.get("problem_type") == "multi_label_classification" or \
                (model.bundle.manifest.get("source") or {}).get("problem_type") == "multi_label_classification":
            raise EdgeAlbertError("evaluate measures single-label classification; this is a multi-label model")
        texts = [e.text for e in data.examples]
        pairs = [e.text_pair for e in data.examples] if data.text_pair_column else None
        logits, calls = model.logits_and_calls(texts, pairs)
        predictions = [int(i) for i in np.argmax(logits, axis=-1)]
        if calls is not None:
            early_exit = {"rule": model.exit_rule.as_text(),
                          **call_distribution(calls, int(model.bundle.manifest["early_exit"]["max_calls"]))}
        metrics = classification_metrics([e.label for e in data.examples], predictions, model.labels)
    elif isinstance(model, QuestionAnswerer):
        handle_impossible = data.has_no_answer_questions
        settings["handle_impossible_answer"] = handle_impossible
        answers = model.predict([q.question for q in data.questions], [q.context for q in data.questions],
                                handle_impossible_answer=handle_impossible)
        predictions = ["" if a.no_answer else a.answer for a in answers]
        metrics = squad_metrics(predictions, [q.answers for q in data.questions])
    else:
        raise EdgeAlbertError(f"evaluation supports {' and '.join(EVALUATED_TASKS)} models, not {model.task}")
    agreement = None
    if reference is not None:
        if len(reference.predictions) != len(predictions):
            raise EdgeAlbertError("the reference was evaluated on different data")
        agreement = float(np.mean([a == b for a, b in zip(predictions, reference.predictions)]))
    return EvaluationReport(model.task, str(data.path), data.sha256, len(data), metrics, predictions, name, reference,
                            agreement, settings, early_exit)


def evaluate_bundle(
    bundle_path,
    data_path,
    text_column: Optional[str] = None,
    text_pair_column: Optional[str] = None,
    label_column: str = DEFAULT_LABEL_COLUMN,
    reference: Optional[ReferenceEvaluator] = None,
    num_threads: Optional[int] = None,
    backend: Optional[str] = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Optional[Progress] = None,
    exit_value: Optional[float] = None,
    trusted_key=None,
) -> EvaluationReport:
    """Evaluate a bundle on a labelled file; with `reference`, also a reference model on the same data.

    `reference(model, data)` evaluates the reference (the workstation's PyTorch model:
    converters.accuracy_gate.evaluate_against_reference), so this module stays device-only.
    `exit_value` replaces an early-exit bundle's patience or threshold before the reference
    runs, so a reference that follows `model.exit_rule` compares like with like.
    """
    say = progress or (lambda message: None)
    model = load_model(bundle_path, num_threads=num_threads, backend=backend, batch_size=batch_size,
                       trusted_key=trusted_key)
    if exit_value is not None:
        if not isinstance(model, TextClassifier) or model.exit_rule is None:
            raise EdgeAlbertError(f"{bundle_path} is not an early-exit bundle; {{exit_value}} does not apply",
                                  options=("exit_value",))
        model.set_exit_value(exit_value)
    data = load_eval_data(data_path, model.task, model.labels, text_column, text_pair_column, label_column)
    reference_report = reference(model, data) if reference is not None else None
    say(f"running {bundle_path} on {len(data)} examples")
    mode = (model.bundle.manifest.get("quantization") or {}).get("mode", "?")
    report = evaluate_model(model, data, reference_report, name=f"{bundle_path} ({mode}, {model.session.backend})")
    if reference_report is not None and "weights_sha256" in reference_report.settings:
        # Agreement means most against the checkpoint the bundle was converted from.
        report.settings["reference_is_bundle_source"] = reference_report.settings["weights_sha256"] == \
            (model.bundle.manifest.get("source") or {}).get("weights_sha256")
    return report


# --------------------------------------------------------------------------- text output


def _pct(fraction: float) -> str:
    return f"{100.0 * fraction:.2f}%"


def report_text(report: EvaluationReport) -> str:
    """A human summary: headline metrics, per-label table and confusion matrix, reference comparison.

    Metrics are percentages with two decimals (80.96%), as convert's accuracy table prints them.
    """
    m = report.metrics
    lines = [f"model:  {report.model}", f"data:   {report.data} ({report.n} examples)"]
    if isinstance(m, ClassificationMetrics):
        lines += [f"accuracy         {_pct(m.accuracy)}"]
        if report.early_exit is not None:
            lines.append(describe_calls(report.early_exit))
        lines += [f"macro precision  {_pct(m.macro_precision)}  recall {_pct(m.macro_recall)}  F1 {_pct(m.macro_f1)}", ""]
        rows = [[label, _pct(v['precision']), _pct(v['recall']), _pct(v['f1']), v["support"]]
                for label, v in m.per_label.items()]
        lines += [format_table(["label", "precision", "recall", "f1", "support"], rows), ""]
        lines.append("confusion matrix (rows: gold label, columns: predicted)")
        lines.append(format_table(["gold \\ predicted", *m.labels],
                                  [[label, *counts] for label, counts in zip(m.labels, m.confusion)]))
    else:
        lines += [f"exact match      {_pct(m.exact_match)}", f"f1               {_pct(m.f1)}"]
        if m.has_answer_n:
            lines.append(f"  answerable     {m.has_answer_n} questions: EM {_pct(m.has_answer_exact_match)}  "
                         f"F1 {_pct(m.has_answer_f1)}")
        if m.no_answer_n:
            lines.append(f"  unanswerable   {m.no_answer_n} questions: EM {_pct(m.no_answer_exact_match)}  "
                         f"F1 {_pct(m.no_answer_f1)}")
    if report.reference is not None:
        ref = report.reference
        lines += ["", f"reference {ref.model}: {ref.metric_name} {_pct(ref.headline)}"]
        if ref.early_exit is not None:
            lines.append("reference " + describe_calls(ref.early_exit))
        lines.append(f"agreement with the reference's predictions: {_pct(report.agreement)} "
                     f"({round(report.agreement * report.n)} of {report.n})")
    return "\n".join(lines)
