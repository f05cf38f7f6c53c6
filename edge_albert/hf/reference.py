"""The one PyTorch reference: a checkpoint's transformers model run on numpy batches.

Verification, the accuracy gate (through evaluate's task objects), finetune's and compress's
accuracy, finetune's `predict` and the benchmarks run PyTorch through this runner, so they all
mean the same thing by "PyTorch": float32 weights, eval mode, no autograd, outputs named by the
task contract. torch and transformers are imported inside the functions (the module imports on a
light install).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from ..contract import INPUT_NAMES, TASK_BY_ARCHITECTURE, task_contract
from ..early_exit import CALLS_OUTPUT, ExitRule
from .checkpoint import AlbertCheckpoint
from .early_exit import reference_early_exit
from .quiet import quiet_transformers

Batch = Mapping[str, np.ndarray]
CheckpointSource = Union[AlbertCheckpoint, str, Path]


def load_reference_model(checkpoint: CheckpointSource):
    """The transformers PyTorch model of the checkpoint, in float32 (fp16-stored weights upcast), eval mode.

    A directory instead of a loaded AlbertCheckpoint is read by transformers alone (the class from
    its config.json), with no numpy copy of the weights: the benchmark measures this model's memory.
    """
    import torch
    import transformers

    quiet_transformers()
    if isinstance(checkpoint, AlbertCheckpoint):
        path, architecture = checkpoint.path, checkpoint.architecture
    else:
        path = Path(checkpoint)
        architecture = (transformers.AutoConfig.from_pretrained(str(path)).architectures or ["AlbertModel"])[0]
    model_class = getattr(transformers, architecture)
    return model_class.from_pretrained(str(path), dtype=torch.float32).eval()


class ReferenceRunner:
    """Runs the PyTorch model on batches keyed by the contract's input names, returns named numpy outputs.

    With an early-exit rule it returns what an early-exit bundle returns: the exit logits and the
    layer calls each row ran (hf/early_exit.py applies the rule after every call).
    """

    def __init__(self, model, task: Optional[str] = None, early_exit: Optional[ExitRule] = None):
        """`model`: a transformers ALBERT model, loaded or still in memory after training (put in eval
        mode here); `task` defaults to the one its class implements."""
        self.model = model.eval()
        self.task = task or TASK_BY_ARCHITECTURE[type(model).__name__]
        self.early_exit = early_exit
        self.output_names = task_contract(self.task).output_names

    def run(self, batch: Batch, early_exit: Optional[ExitRule] = None) -> Dict[str, np.ndarray]:
        """One batch ([batch, seq] int arrays or CPU tensors per input name; other keys, such as
        labels, are ignored); `early_exit` overrides the runner's rule."""
        import torch

        rule = early_exit or self.early_exit
        if rule is not None:
            logits, calls, _ = reference_early_exit(self.model, rule, *(batch[name] for name in INPUT_NAMES))
            return {"logits": logits, CALLS_OUTPUT: calls}
        with torch.inference_mode():
            output = self.model(**{name: torch.from_numpy(np.asarray(batch[name], dtype=np.int64))
                                   for name in INPUT_NAMES})
        return {name: getattr(output, name).float().numpy() for name in self.output_names}

    def run_all(self, batches: Sequence[Batch]) -> List[Dict[str, np.ndarray]]:
        return [self.run(batch) for batch in batches]


def load_reference_runner(checkpoint: CheckpointSource, model=None,
                          early_exit: Optional[ExitRule] = None) -> ReferenceRunner:
    """The reference for `checkpoint` (loaded or a directory): its model (loaded unless given) behind ReferenceRunner."""
    task = checkpoint.task if isinstance(checkpoint, AlbertCheckpoint) else None
    return ReferenceRunner(model if model is not None else load_reference_model(checkpoint), task, early_exit)
