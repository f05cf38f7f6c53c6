"""The pieces both training commands share: `finetune` and `compress` (distillation) run on transformers' Trainer.

One place for the dataset of tokenized rows (Trainer's collator pads each batch), the
TrainingArguments recipe (AdamW betas 0.9/0.98, eps 1e-6, no decay on biases and LayerNorm,
linear warm-up then linear decay, gradient clipping at 1, length-grouped batches, CPU), a
Trainer whose loss is a plain function, and quiet-by-default progress (edge_albert/verbosity.py).
Imported only on a workstation: torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import json
import struct
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from .errors import EdgeAlbertError
from .verbosity import is_verbose


class EncodedDataset:
    """Tokenized examples as a list of dicts; Trainer's collator pads each batch."""

    def __init__(self, tokenizer, examples: Sequence, max_length: int):
        texts = [e.text for e in examples]
        pairs = [e.text_pair for e in examples]
        if any(p is not None for p in pairs):
            encoded = tokenizer(texts, pairs, truncation=True, max_length=max_length, return_token_type_ids=True)
        else:
            encoded = tokenizer(texts, truncation=True, max_length=max_length, return_token_type_ids=True)
        self.rows = [
            {"input_ids": encoded["input_ids"][i], "attention_mask": encoded["attention_mask"][i],
             "token_type_ids": encoded["token_type_ids"][i], "labels": examples[i].label}
            for i in range(len(examples))
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        return self.rows[index]


def batches(dataset, collator, batch_size: int):
    """Padded batches of `dataset` in order (evaluation)."""
    for start in range(0, len(dataset), batch_size):
        yield collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])


def accuracy_of(model, dataset: EncodedDataset, tokenizer, batch_size: int = 128) -> float:
    """Fraction of `dataset` the model labels correctly, run as the PyTorch reference (eval mode, float32)."""
    from transformers import DataCollatorWithPadding

    from .hf.reference import ReferenceRunner  # lazy: numpy; the CLI imports this module at start

    runner = ReferenceRunner(model)
    correct = 0
    for batch in batches(dataset, DataCollatorWithPadding(tokenizer, return_tensors="np"), batch_size):
        correct += int((runner.run(batch)["logits"].argmax(-1) == batch["labels"]).sum())
    return correct / len(dataset)


def accuracy_metric(prediction) -> dict:
    """Trainer's compute_metrics: dev accuracy (logged as eval_accuracy)."""
    import numpy as np

    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    return {"accuracy": float((np.argmax(logits, axis=-1) == prediction.label_ids).mean())}


def show_progress() -> bool:
    """Progress bars only when asked (--verbose) or when a person watches a terminal."""
    return is_verbose() or sys.stderr.isatty()


def training_arguments(output_dir: Path, *, epochs: float, batch_size: int, learning_rate: float, weight_decay: float,
                       warmup_ratio: float, seed: int, evaluate_each_epoch: bool, save_strategy: str = "epoch",
                       save_steps: int = 500, save_total_limit: int = 2, logging_steps: int = 50):
    """The project's recipe as TrainingArguments; the callers differ only in the numbers."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size * 2,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        lr_scheduler_type="linear",
        warmup_steps=warmup_ratio,  # a float below 1 is a ratio of the total steps
        adam_beta2=0.98,
        adam_epsilon=1e-6,
        max_grad_norm=1.0,
        eval_strategy="epoch" if evaluate_each_epoch else "no",
        save_strategy=save_strategy,
        save_steps=save_steps,
        save_total_limit=save_total_limit,
        logging_steps=logging_steps,
        report_to=[],
        use_cpu=True,
        seed=seed,
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length",
        label_names=["labels"],
        disable_tqdm=not show_progress(),
    )


def loss_trainer(loss: Callable, **trainer_kwargs):
    """A Trainer whose loss is `loss(model, inputs) -> (loss, outputs)`; quiet unless show_progress().

    `inputs` holds the labels; the function must not change it (Trainer reads them afterwards).
    """
    from transformers import PrinterCallback, Trainer

    class LossTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            value, outputs = loss(model, inputs)
            return (value, outputs) if return_outputs else value

    trainer = LossTrainer(**trainer_kwargs)
    if trainer.args.disable_tqdm:
        trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout
    return trainer


def save_checkpoint(model, out_dir: Path, save_dtype: str) -> None:
    """Save config.json (dtype float32: the compute dtype) and model.safetensors in `save_dtype`.

    Storing float16 halves the file; transformers (dtype "auto" reads the config) and the
    project's reader both cast the weights back to float32.
    """
    import torch
    from safetensors.torch import save_file

    dtypes = {"float32": torch.float32, "float16": torch.float16}
    if save_dtype not in dtypes:
        raise EdgeAlbertError(f"save_dtype must be one of {', '.join(dtypes)}, not {save_dtype!r}")
    state = {name: tensor.detach().to(dtypes[save_dtype]).contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    model.config.dtype = "float32"
    model.config.save_pretrained(str(out_dir))


def stored_float_dtype(checkpoint_dir) -> str:
    """"float16" when a checkpoint's model.safetensors stores its floating tensors in float16, else
    "float32" (bfloat16, float32, mixed, or a pytorch_model.bin): what save_checkpoint takes."""
    path = Path(checkpoint_dir) / "model.safetensors"
    if not path.is_file():
        return "float32"
    with open(path, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    floats = {v["dtype"] for k, v in header.items() if k != "__metadata__" and v["dtype"] in ("F16", "BF16", "F32", "F64")}
    return "float16" if floats == {"F16"} else "float32"


def last_checkpoint(output_dir: Path) -> Optional[str]:
    """The newest checkpoint-N directory Trainer left in `output_dir`, or None."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None


def step_logger(log: Callable[[str], None], prefix: str = ""):
    """A TrainerCallback logging, at each of Trainer's logging steps, the loss, steps/s and the time left:
    a run of tens of minutes in the background (stdout a file, no progress bar) shows where it is."""
    from transformers import TrainerCallback

    class LogSteps(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.start = (time.perf_counter(), state.global_step)  # a resumed run's rate counts its own steps

        def on_log(self, args, state, control, logs=None, **kwargs):
            seconds, steps = time.perf_counter() - self.start[0], state.global_step - self.start[1]
            if logs and "train_loss" in logs:  # Trainer's summary at the end of training
                log(f"{prefix}step {state.global_step}/{state.max_steps}  mean loss {logs['train_loss']:.4f}  "
                    f"done in {seconds:.0f}s")
            if not logs or "loss" not in logs:
                return
            rate = steps / seconds if seconds > 0 else 0.0
            left = (state.max_steps - state.global_step) / rate if rate > 0 else 0.0
            log(f"{prefix}step {state.global_step}/{state.max_steps}  loss {logs['loss']:.4f}  {rate:.2f} steps/s  "
                f"ETA {int(left // 3600)}h{int(left % 3600 // 60):02d}m")

    return LogSteps()


def epoch_accuracy_logger(log: Callable[[str], None]):
    """A TrainerCallback logging the dev accuracy after each evaluation (once per epoch)."""
    from transformers import TrainerCallback

    class LogEpochs(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if metrics and "eval_accuracy" in metrics:
                log(f"epoch {state.epoch:.2f}: dev accuracy {metrics['eval_accuracy']:.4f}")

    return LogEpochs()
