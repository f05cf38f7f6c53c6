"""The one PyTorch reference: a checkpoint's transformers model run on numpy batches.

Verification, the accuracy gate (through evaluate's task objects) and the benchmarks compare
every converted variant against this runner, so they all mean the same thing by "PyTorch".
torch and transformers are imported inside the functions (the module imports on a light install).
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from ..contract import INPUT_NAMES, task_contract
from ..early_exit import CALLS_OUTPUT, ExitRule
from .checkpoint import AlbertCheckpoint

Batch = Mapping[str, np.ndarray]


def load_reference_model(checkpoint: AlbertCheckpoint):
    """The transformers PyTorch model of the checkpoint, in float32 (fp16-stored weights upcast)."""
    import torch
    import transformers

    from .quiet import quiet_transformers

    quiet_transformers()
    model_class = getattr(transformers, checkpoint.architecture)
    return model_class.from_pretrained(str(checkpoint.path), dtype=torch.float32).eval()


class ReferenceRunner:
    """Runs the PyTorch model on batches keyed by the contract's input names, returns named numpy outputs.

    With an early-exit rule it returns what an early-exit bundle returns: the exit logits and the
    layer calls each row ran (converters/early_exit.py applies the rule after every call).
    """

    def __init__(self, model, task: str, early_exit: Optional[ExitRule] = None):
        self.model = model
        self.task = task
        self.early_exit = early_exit
        self.output_names = task_contract(task).output_names

    def run(self, batch: Batch, early_exit: Optional[ExitRule] = None) -> Dict[str, np.ndarray]:
        """One batch ([batch, seq] int arrays per input name); `early_exit` overrides the runner's rule."""
        import torch

        rule = early_exit or self.early_exit
        if rule is not None:
            from .early_exit import reference_early_exit

            logits, calls, _ = reference_early_exit(self.model, rule, *(batch[name] for name in INPUT_NAMES))
            return {"logits": logits, CALLS_OUTPUT: calls}
        with torch.no_grad():
            output = self.model(**{name: torch.from_numpy(np.asarray(batch[name], dtype=np.int64))
                                   for name in INPUT_NAMES})
        return {name: getattr(output, name).float().numpy() for name in self.output_names}

    def run_all(self, batches: Sequence[Batch]) -> List[Dict[str, np.ndarray]]:
        return [self.run(batch) for batch in batches]


def load_reference_runner(checkpoint: AlbertCheckpoint, model=None,
                          early_exit: Optional[ExitRule] = None) -> ReferenceRunner:
    """The reference for `checkpoint`: its model (loaded unless given) behind ReferenceRunner."""
    return ReferenceRunner(model if model is not None else load_reference_model(checkpoint), checkpoint.task, early_exit)
