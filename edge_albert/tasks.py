"""Task APIs over a bundle: text classification, question answering, token classification, features.

Each class loads a verified bundle once (tokenizer + interpreter) and turns texts into plain
results. Inputs longer than the model's maximum are truncated and the result says
`truncated=True`; empty and whitespace-only texts are valid inputs (they encode to [CLS] [SEP]).
Nothing here imports TensorFlow, PyTorch or transformers.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .bundle import Bundle, load_bundle
from .contract import TASKS, task_contract
from .device_options import DEFAULT_BATCH_SIZE
from .early_exit import CALLS_OUTPUT, ExitRule, rule_of
from .errors import BundleError, DataError, check_number
from .runtime import ModelSession, check_batch
from .tokenizer import AlbertTokenizer, Encoded

PathLike = Union[str, os.PathLike]
TextOrTexts = Union[str, Sequence[str]]
# QA reads a whole context in overlapping windows, so memory and time grow with its length (1 M characters
# at max_seq_len 32: +240 MB, 18 s on one core). Longer contexts are refused rather than run out of memory.
MAX_QA_CONTEXT_CHARS = 1 << 20

# Outputs with a value per token, by task (the runtime trims their padding).
SEQUENCE_OUTPUTS = {task: contract.per_token_outputs for task, contract in TASKS.items()}


@dataclass
class Prediction:
    """A text classification result: the top label, its probability, and every label's probability."""

    label: str
    score: float
    scores: Dict[str, float]
    truncated: bool = False
    layer_calls: Optional[int] = None  # early-exit bundles: calls of the shared layer this text needed

    def to_dict(self, top_k: Optional[int] = None) -> dict:
        ranked = sorted(self.scores.items(), key=lambda item: -item[1])
        if top_k is not None:
            ranked = ranked[:top_k]
        result = {"label": self.label, "score": self.score, "scores": dict(ranked), "truncated": self.truncated}
        if self.layer_calls is not None:
            result["layer_calls"] = self.layer_calls
        return result


@dataclass
class Answer:
    """The best answer span; `start`/`end` are character offsets into the context (end exclusive)."""

    answer: str
    start: int
    end: int
    score: float
    no_answer: bool = False
    null_score: float = 0.0  # probability of "no answer" ([CLS] as start and end), lowest over windows
    truncated: bool = False  # the question was cut to leave room for the context

    def to_dict(self, top_k: Optional[int] = None) -> dict:
        return asdict(self)


@dataclass
class WordLabel:
    """One word's label; `start`/`end` are character offsets into the text (end exclusive)."""

    word: str
    label: str
    score: float
    start: int
    end: int


@dataclass
class TokenClassification:
    words: List[WordLabel]
    truncated: bool = False

    def to_dict(self, top_k: Optional[int] = None) -> dict:
        return {"words": [asdict(word) for word in self.words], "truncated": self.truncated}


@dataclass
class Features:
    """Sentence embedding (`pooler_output`) and per-token states of the real tokens."""

    pooled: np.ndarray
    token_states: np.ndarray = field(repr=False)
    truncated: bool = False

    def to_dict(self, top_k: Optional[int] = None) -> dict:
        return {"pooled": self.pooled.tolist(), "num_tokens": int(self.token_states.shape[0]),
                "truncated": self.truncated}


def check_outputs(bundle: Bundle, outputs: Dict[str, List[int]]) -> None:
    """Refuse a bundle whose model lacks an output its task reads, or has one logit per label too few or many.

    The outputs come from the task's contract; "logits" has one value per label on its last axis.
    """
    contract = task_contract(bundle.task)
    for spec in contract.outputs:
        if spec.name not in outputs:
            raise BundleError(f"{bundle.model_path} has no output {spec.name!r} (it has "
                              f"{', '.join(sorted(outputs)) or 'none'}); a {bundle.task} bundle needs "
                              f"{', '.join(contract.output_names)}")
        shape = outputs[spec.name]
        if len(shape) < 2 or (not spec.per_token and len(shape) != 2):
            raise BundleError(f"{bundle.model_path}: output {spec.name!r} has shape {shape}; expected [batch, "
                              f"{'length, ...' if spec.per_token else 'width'}]")
        if spec.name == "logits" and bundle.labels and shape[-1] != len(bundle.labels):
            raise BundleError(f"{bundle.path / 'manifest.json'}: field 'labels' names {len(bundle.labels)} labels "
                              f"but the model gives {shape[-1]} logits per {'token' if spec.per_token else 'text'}; "
                              f"it needs exactly one label name per logit")


def _as_list(texts: TextOrTexts, name: str = "texts") -> List[str]:
    """One string or a sequence of strings, as a list; anything else is a TypeError naming the parameter
    (a dict would otherwise be read as its keys, None as an empty text)."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (Mapping, bytes, bytearray)) or not isinstance(texts, Iterable):
        raise TypeError(f"{name} must be a string or a list of strings, not {type(texts).__name__}")
    items = list(texts)
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{index}] must be a string, not {type(item).__name__}")
    return items


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x - max) / sum, in place on one new array (a few numpy calls: this runs once per predict call)."""
    probabilities = logits - logits.max(axis=axis, keepdims=True)
    np.exp(probabilities, out=probabilities)
    probabilities /= probabilities.sum(axis=axis, keepdims=True)
    return probabilities


class BundleModel:
    """A loaded bundle: tokenizer, interpreter session and manifest. Subclasses add the task."""

    task: str = ""

    def __init__(self, bundle: Bundle, session: ModelSession, tokenizer: AlbertTokenizer,
                 batch_size: int = DEFAULT_BATCH_SIZE):
        self.bundle = bundle
        self.session = session
        self.tokenizer = tokenizer
        self.batch_size = check_batch(batch_size)

    @classmethod
    def load(cls, path: PathLike, num_threads: Optional[int] = None, backend: Optional[str] = None,
             batch_size: int = DEFAULT_BATCH_SIZE, weight_cache: Optional[PathLike] = None,
             verify: bool = True, trusted_key: Optional[PathLike] = None) -> "BundleModel":
        """Load and verify a bundle (sha256 of every file; with `trusted_key`, its signature) and
        create its interpreter once."""
        check_batch(batch_size)
        bundle = load_bundle(path, verify=verify, trusted_key=trusted_key)
        target = TASK_CLASSES.get(bundle.task)
        if target is None:
            raise BundleError(f"{bundle.path / 'manifest.json'}: field 'task' is {bundle.task!r}; this edge-albert "
                              f"runs {', '.join(TASK_CLASSES)}")
        if cls is not BundleModel and not issubclass(target, cls):
            raise BundleError(f"{path} is a {bundle.task} bundle; load it with {target.__name__}, not {cls.__name__}")
        special = (bundle.manifest.get("tokenizer") or {}).get("special_tokens") or {}
        tokenizer = AlbertTokenizer.from_file(bundle.tokenizer_path, pad_id=special.get("pad_id"))
        rule = rule_of(bundle.manifest)
        session = ModelSession(
            bundle.model_path, backend=backend, num_threads=num_threads, max_seq_len=bundle.max_seq_len,
            pad_id=tokenizer.pad_id, sequence_outputs=SEQUENCE_OUTPUTS[bundle.task],
            min_runtime=(bundle.manifest.get("quantization") or {}).get("min_runtime"), weight_cache=weight_cache,
            constant_inputs=rule.feed() if rule else None,
        )
        check_outputs(bundle, session.output_shapes())
        return target(bundle, session, tokenizer, batch_size=batch_size)

    @property
    def max_seq_len(self) -> int:
        return self.session.max_seq_len

    @property
    def labels(self) -> List[str]:
        return self.bundle.labels

    def run_encoded(self, encoded: Encoded) -> Dict[str, np.ndarray]:
        """Model outputs for every row of `encoded`, in row order; sequence outputs span encoded.length.

        Rows run batch by batch, shortest together, so that each batch is padded only to its own
        longest row (a batch of several rows then to a length bucket; one row runs at its exact
        length); positions past a row's length hold zeros.
        """
        session = self.session
        if encoded.length > session.max_seq_len:
            raise ValueError(f"batch length {encoded.length} exceeds the model's maximum {session.max_seq_len}")
        if encoded.num_rows == 0:
            return {}
        if encoded.num_rows <= self.batch_size:  # one batch (one text per call): no sorting, no scattering
            return self._run_rows(encoded, range(encoded.num_rows), encoded.length)
        outputs: Dict[str, np.ndarray] = {}
        lengths = encoded.lengths()
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(order), self.batch_size):
            picked = order[start:start + self.batch_size]
            for name, value in self._run_rows(encoded, picked, int(lengths[picked].max())).items():
                if name not in outputs:
                    shape = (encoded.num_rows,) + ((encoded.length,) if name in session.sequence_outputs else ())
                    outputs[name] = np.zeros(shape + value.shape[len(shape):], dtype=value.dtype)
                if name in session.sequence_outputs:
                    outputs[name][picked, :value.shape[1]] = value
                else:
                    outputs[name][picked] = value
        return outputs

    def _run_rows(self, encoded: Encoded, rows: Sequence[int], length: int) -> Dict[str, np.ndarray]:
        """Outputs of `rows`, padded once to the model's width for `length` tokens; sequence outputs cut to `length`."""
        session = self.session
        outputs = session.run_padded(*encoded.batch(rows, session.padded_length(max(length, 1), len(rows))))
        for name in session.sequence_outputs.intersection(outputs):
            outputs[name] = outputs[name][:, :length]
        return outputs


class TextClassifier(BundleModel):
    """`predict(texts)` -> one Prediction per text (softmax over the bundle's labels)."""

    task = "text-classification"

    @property
    def exit_rule(self) -> Optional[ExitRule]:
        """The early-exit rule in force (the bundle's default unless changed), or None at full depth."""
        rule = rule_of(self.bundle.manifest)
        if rule is None:
            return None
        return rule.from_feed(self.session.constant_inputs)

    def set_exit_value(self, value: float) -> None:
        """Change the patience or entropy threshold at run time (no reconversion): speed against accuracy."""
        rule = rule_of(self.bundle.manifest)
        if rule is None:
            raise BundleError(f"{self.bundle.path} is not an early-exit bundle; it always runs every layer call")
        self.session.constant_inputs.update(rule.with_value(value).feed())

    def predict(self, texts: TextOrTexts, text_pairs: Optional[TextOrTexts] = None) -> List[Prediction]:
        texts = _as_list(texts)
        pairs = None if text_pairs is None else _as_list(text_pairs, "text_pairs")
        encoded = self._encode(texts, pairs)
        logits, calls = self._run(encoded)
        return self._predictions(logits, encoded.truncated, None if calls is None else calls.tolist())

    def logits(self, texts: TextOrTexts, text_pairs: Optional[TextOrTexts] = None) -> np.ndarray:
        """Raw logits [len(texts), num_labels], for checks against the reference."""
        return self.logits_and_calls(texts, text_pairs)[0]

    def logits_and_calls(self, texts: TextOrTexts,
                         text_pairs: Optional[TextOrTexts] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Logits and, for early-exit bundles, the layer calls each text ran (else None)."""
        texts = _as_list(texts)
        pairs = None if text_pairs is None else _as_list(text_pairs, "text_pairs")
        return self._run(self._encode(texts, pairs))

    def _run(self, encoded: Encoded) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        if encoded.num_rows == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32), None
        outputs = self.run_encoded(encoded)
        calls = outputs.get(CALLS_OUTPUT)
        return outputs["logits"], None if calls is None else calls.astype(np.int64)

    def _encode(self, texts: List[str], pairs: Optional[List[str]]) -> Encoded:
        return self.tokenizer.encode(texts, pairs, max_length=self.max_seq_len, truncation="longest_first")

    def _predictions(self, logits: np.ndarray, truncated: Sequence[bool],
                     layer_calls: Optional[List[int]] = None) -> List[Prediction]:
        """One Prediction per row of `logits` [rows, labels]: probabilities (float64 softmax, or the sigmoid
        of a multi-label model) for the whole batch in a few numpy calls, then plain Python per row."""
        if not len(logits):
            return []
        if self._multi_label:
            probabilities = 1.0 / (1.0 + np.exp(-logits))
        else:
            probabilities = softmax(logits.astype(np.float64))
        labels = self._label_names(logits.shape[-1])
        best = probabilities.argmax(axis=-1).tolist()
        rows = probabilities.tolist()  # Python floats, as float(p) gives
        return [Prediction(label=labels[top], score=values[top], scores=dict(zip(labels, values)), truncated=cut,
                           layer_calls=None if layer_calls is None else layer_calls[i])
                for i, (values, top, cut) in enumerate(zip(rows, best, truncated))]

    @cached_property
    def _multi_label(self) -> bool:
        return (self.bundle.manifest.get("source") or {}).get("problem_type") == "multi_label_classification"

    def _label_names(self, width: int) -> List[str]:
        """The bundle's labels (LABEL_i when it names none), read from the manifest once."""
        names = self.__dict__.get("_names")
        if names is None or len(names) != width:
            names = self.__dict__["_names"] = self.labels or [f"LABEL_{i}" for i in range(width)]
        return names


class QuestionAnswerer(BundleModel):
    """Extractive QA: the best context span for each question, over overlapping context windows."""

    task = "question-answering"

    def predict(self, questions: TextOrTexts, contexts: TextOrTexts, stride: Optional[int] = None,
                max_answer_tokens: int = 30, handle_impossible_answer: bool = False) -> List[Answer]:
        """Answer each (question, context) pair.

        Long contexts are split into windows of max_seq_len tokens overlapping by `stride` tokens
        (default a quarter of max_seq_len, at most half the room a longest allowed question leaves);
        questions longer than min(64, max_seq_len // 2) tokens are cut.
        With `handle_impossible_answer` (SQuAD v2 models), an empty answer wins when its
        probability beats the best span's.
        """
        contexts = _as_list(contexts, "contexts")
        check_number(max_answer_tokens, "max_answer_tokens", low=1, integer=True)
        encoded, question_cut = self.encode(questions, contexts, stride)
        if encoded.num_rows == 0:
            return []
        outputs = self.run_encoded(encoded)
        best: List[Optional[Answer]] = [None] * len(contexts)
        null = [1.0] * len(contexts)
        for row in range(encoded.num_rows):
            example = int(encoded.example_index[row])
            span, null_probability = self._best_span(
                outputs["start_logits"][row], outputs["end_logits"][row],
                encoded.sequence_ids[row], encoded.offsets[row], max_answer_tokens)
            null[example] = min(null[example], null_probability)
            if span is not None and (best[example] is None or span[2] > best[example].score):
                start, end, score = span
                best[example] = Answer(contexts[example][start:end], start, end, score)
        answers = []
        for example, answer in enumerate(best):
            if answer is None or (handle_impossible_answer and null[example] > answer.score):
                answer = Answer("", 0, 0, null[example], no_answer=True)
            answer.null_score = null[example]
            answer.truncated = question_cut[example]
            answers.append(answer)
        return answers

    def encode(self, questions: TextOrTexts, contexts: TextOrTexts,
               stride: Optional[int] = None) -> Tuple[Encoded, List[bool]]:
        """Context windows for each pair, and whether each question had to be cut.

        The question keeps at most min(64, max_seq_len // 2) tokens, since "only_second"
        truncation cannot make room for a context otherwise.
        """
        questions, contexts = _as_list(questions, "questions"), _as_list(contexts, "contexts")
        if stride is not None:
            check_number(stride, "stride", low=0, integer=True)
        if len(questions) != len(contexts):
            raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
        for index, context in enumerate(contexts):
            if context is not None and len(context) > MAX_QA_CONTEXT_CHARS:
                raise DataError(f"context {index} has {len(context):,} characters; question answering reads at most "
                                f"{MAX_QA_CONTEXT_CHARS:,} per context: split the document")
        max_question = min(64, self.max_seq_len // 2)
        shortened = [self.tokenizer.shorten(q, max_question) for q in questions]
        questions = [q for q, _ in shortened]
        # From the longest question allowed, not the batch's: windows must not depend on the batch.
        room = self.max_seq_len - max_question - 3  # [CLS] question [SEP] context [SEP]
        stride = max(0, min(self.max_seq_len // 4 if stride is None else stride, room // 2))  # longer overlaps are cut
        encoded = self.tokenizer.encode(questions, contexts, max_length=self.max_seq_len, truncation="only_second",
                                        stride=stride, return_overflowing_tokens=True)
        return encoded, [cut for _, cut in shortened]

    @staticmethod
    def _best_span(start_logits, end_logits, sequence_ids, offsets, max_answer_tokens):
        """Best (start_char, end_char, probability) in one window, and the window's no-answer probability."""
        length = len(start_logits)
        context = np.array([sequence_ids[i] == 1 for i in range(length)])
        allowed = context.copy()
        allowed[0] = True  # [CLS] stands for "no answer", as in Hugging Face's QA pipeline
        start_p = softmax(np.where(allowed, start_logits, -np.inf).astype(np.float64))
        end_p = softmax(np.where(allowed, end_logits, -np.inf).astype(np.float64))
        null_probability = float(start_p[0] * end_p[0])
        if not context.any():
            return None, null_probability
        scores = np.outer(np.where(context, start_p, 0.0), np.where(context, end_p, 0.0))
        scores = np.triu(scores) - np.triu(scores, max_answer_tokens)  # end >= start, span <= max tokens
        i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
        return (int(offsets[i][0]), int(offsets[j][1]), float(scores[i, j])), null_probability


class TokenClassifier(BundleModel):
    """Word-level labels (the label of each word's first sub-token) with character offsets."""

    task = "token-classification"

    def predict(self, texts: TextOrTexts) -> List[TokenClassification]:
        texts = _as_list(texts)
        encoded = self.tokenizer.encode(texts, max_length=self.max_seq_len, truncation="longest_first")
        if not texts:
            return []
        probabilities = softmax(self.run_encoded(encoded)["logits"].astype(np.float64))
        return [
            TokenClassification(
                self._words(texts[row], probabilities[row], encoded.word_ids[row], encoded.sequence_ids[row],
                            encoded.offsets[row], self.labels),
                truncated=encoded.truncated[row])
            for row in range(encoded.num_rows)
        ]

    @staticmethod
    def _words(text, probabilities, word_ids, sequence_ids, offsets, labels) -> List[WordLabel]:
        words: Dict[int, List[int]] = {}
        for token, word in enumerate(word_ids[:len(probabilities)]):
            if word is not None and sequence_ids[token] == 0:
                words.setdefault(word, []).append(token)
        result = []
        for word, tokens in words.items():
            first = tokens[0]
            best = int(np.argmax(probabilities[first]))
            start = int(min(offsets[t][0] for t in tokens))
            end = int(max(offsets[t][1] for t in tokens))
            label = labels[best] if best < len(labels) else f"LABEL_{best}"
            result.append(WordLabel(text[start:end], label, float(probabilities[first][best]), start, end))
        return result


class FeatureExtractor(BundleModel):
    """Sentence and token embeddings from a feature-extraction (AlbertModel) bundle."""

    task = "feature-extraction"

    def predict(self, texts: TextOrTexts) -> List[Features]:
        texts = _as_list(texts)
        encoded = self.tokenizer.encode(texts, max_length=self.max_seq_len, truncation="longest_first")
        if not texts:
            return []
        outputs = self.run_encoded(encoded)
        lengths = encoded.lengths()
        return [Features(pooled=outputs["pooler_output"][row],
                         token_states=outputs["last_hidden_state"][row, :lengths[row]],
                         truncated=encoded.truncated[row])
                for row in range(encoded.num_rows)]


TASK_CLASSES = {
    "text-classification": TextClassifier,
    "question-answering": QuestionAnswerer,
    "token-classification": TokenClassifier,
    "feature-extraction": FeatureExtractor,
}


def load_model(path: PathLike, num_threads: Optional[int] = None, backend: Optional[str] = None,
               batch_size: int = DEFAULT_BATCH_SIZE, weight_cache: Optional[PathLike] = None,
               trusted_key: Optional[PathLike] = None) -> BundleModel:
    """Load a bundle as the task object its manifest names (TextClassifier, QuestionAnswerer, ...).

    With `trusted_key` (or $EDGE_ALBERT_TRUSTED_KEY), only a bundle signed by that key loads.
    """
    return BundleModel.load(path, num_threads=num_threads, backend=backend, batch_size=batch_size,
                            weight_cache=weight_cache, trusted_key=trusted_key)
