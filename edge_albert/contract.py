"""The contract between a converted model and everything that drives it, defined once.

The graph builder, verification, the runtime, the tasks, export-android and the benchmark all
read input names, dtypes, the signature and the outputs of each task from here. It lives on the
device side because the runtime may not import the converter; the converter imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

SIGNATURE_NAME = "serving_default"

INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
TOKEN_TYPE_IDS = "token_type_ids"
# Order matters: it is the order of the serving signature's arguments.
INPUT_NAMES: Tuple[str, ...] = (INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS)
INPUT_DTYPE = "int32"
OUTPUT_DTYPE = "float32"


@dataclass(frozen=True)
class OutputSpec:
    """One model output: its name and whether it has a value per token or one per sequence."""

    name: str
    per_token: bool


@dataclass(frozen=True)
class TaskContract:
    """What a bundle of one task takes and gives, and the Hugging Face class it comes from."""

    task: str
    architecture: str
    outputs: Tuple[OutputSpec, ...]

    @property
    def output_names(self) -> Tuple[str, ...]:
        return tuple(output.name for output in self.outputs)

    @property
    def per_token_outputs(self) -> Tuple[str, ...]:
        return tuple(output.name for output in self.outputs if output.per_token)

    @property
    def per_sequence_outputs(self) -> Tuple[str, ...]:
        return tuple(output.name for output in self.outputs if not output.per_token)


TASKS: Dict[str, TaskContract] = {
    contract.task: contract
    for contract in (
        TaskContract("text-classification", "AlbertForSequenceClassification", (OutputSpec("logits", False),)),
        TaskContract("question-answering", "AlbertForQuestionAnswering",
                     (OutputSpec("start_logits", True), OutputSpec("end_logits", True))),
        TaskContract("token-classification", "AlbertForTokenClassification", (OutputSpec("logits", True),)),
        TaskContract("feature-extraction", "AlbertModel",
                     (OutputSpec("last_hidden_state", True), OutputSpec("pooler_output", False))),
    )
}
TASK_BY_ARCHITECTURE: Dict[str, str] = {contract.architecture: contract.task for contract in TASKS.values()}


def task_contract(task: str) -> TaskContract:
    """The contract of `task`; a KeyError names the tasks that exist."""
    try:
        return TASKS[task]
    except KeyError:
        raise KeyError(f"unknown task {task!r}; known: {', '.join(TASKS)}") from None
