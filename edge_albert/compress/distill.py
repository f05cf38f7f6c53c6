"""Knowledge distillation of the pruned student on transformers' Trainer (edge_albert/training.py).

Loss: alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * cross-entropy
on the labels (Hinton et al. 2015; the mean over the batch's rows, an unlabelled augmented row
counting zero), plus optionally hidden_weight * MSE between the student's
hidden states after call i and the teacher's after call round(i * L_teacher / L_student)
(same width, so no projection is needed), over real (non-padding) tokens. alpha = 0 and
hidden_weight = 0 is plain fine-tuning (the ablation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Optional

from ..errors import CompressionError, check_number
from ..training import (EncodedDataset, accuracy_metric, epoch_accuracy_logger, loss_trainer, step_logger,
                        training_arguments)
from .augment import NO_LABEL


@dataclass(frozen=True)
class DistillConfig:
    epochs: float = 1.0
    batch_size: int = 64
    learning_rate: float = 2e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    temperature: float = 2.0
    alpha: float = 0.9
    hidden_weight: float = 0.0
    max_length: int = 128
    seed: int = 0
    save_steps: int = 200
    threads: int = 1

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self) -> None:
        """One error naming the setting, before anything is read or trained: counts below 1, rates
        and weights NaN, infinite or out of range (alpha is a mixing weight in [0, 1])."""
        for name in ("batch_size", "max_length", "save_steps", "threads"):
            check_number(getattr(self, name), name, low=1, integer=True, error=CompressionError)
        check_number(self.seed, "seed", low=0, integer=True, error=CompressionError)
        for name in ("epochs", "learning_rate", "temperature"):
            check_number(getattr(self, name), name, low=0, low_open=True, error=CompressionError)
        for name in ("weight_decay", "hidden_weight"):
            check_number(getattr(self, name), name, low=0, error=CompressionError)
        for name in ("alpha", "warmup_ratio"):
            check_number(getattr(self, name), name, low=0, high=1, error=CompressionError)


def distillation_loss(student_outputs, teacher_outputs, labels, attention_mask, config: DistillConfig):
    """The loss above, from model outputs; hidden states are used only when hidden_weight > 0."""
    import torch.nn.functional as F

    # rows labelled NO_LABEL (augmented, edge_albert/compress/augment.py) add nothing to the label term
    ce = F.cross_entropy(student_outputs.logits, labels, ignore_index=NO_LABEL, reduction="sum") / labels.shape[0]
    if teacher_outputs is None:
        return ce
    t = config.temperature
    soft = F.kl_div(F.log_softmax(student_outputs.logits / t, dim=-1), F.softmax(teacher_outputs.logits / t, dim=-1),
                    reduction="batchmean") * t * t
    loss = config.alpha * soft + (1 - config.alpha) * ce
    if config.hidden_weight > 0:
        student_states, teacher_states = student_outputs.hidden_states, teacher_outputs.hidden_states
        s_layers, t_layers = len(student_states) - 1, len(teacher_states) - 1
        mask = attention_mask.unsqueeze(-1).to(student_outputs.logits.dtype)
        tokens = mask.sum() * student_states[-1].shape[-1]
        hidden = 0.0
        for i in range(1, s_layers + 1):
            j = round(i * t_layers / s_layers)
            hidden = hidden + (((student_states[i] - teacher_states[j]) ** 2) * mask).sum() / tokens
        loss = loss + config.hidden_weight * hidden / s_layers
    return loss


def make_trainer(student, teacher, train: EncodedDataset, dev: Optional[EncodedDataset], tokenizer, output_dir: Path,
                 config: DistillConfig, log: Callable[[str], None] = print):
    """A Trainer that distils `teacher` into `student` (teacher None: plain cross-entropy)."""
    import torch
    from transformers import DataCollatorWithPadding

    use_teacher = teacher is not None and (config.alpha > 0 or config.hidden_weight > 0)
    if use_teacher:
        teacher.eval()
        for parameter in teacher.parameters():
            parameter.requires_grad_(False)

    def loss(model, inputs):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        want_hidden = model.training and config.hidden_weight > 0
        outputs = model(**inputs, output_hidden_states=want_hidden)
        teacher_outputs = None
        if use_teacher and model.training:
            with torch.no_grad():
                teacher_outputs = teacher(**inputs, output_hidden_states=want_hidden)
        return distillation_loss(outputs, teacher_outputs, labels, inputs["attention_mask"], config), outputs

    args = training_arguments(
        output_dir, epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
        weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio, seed=config.seed,
        evaluate_each_epoch=dev is not None, save_strategy="steps", save_steps=config.save_steps,
    )
    return loss_trainer(
        loss,
        model=student,
        args=args,
        train_dataset=train,
        eval_dataset=dev,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=accuracy_metric if dev is not None else None,
        callbacks=[epoch_accuracy_logger(log), step_logger(log)],
    )


# -- soft targets stored with the rows (a teacher of another architecture: edge_albert/compress/foreign.py) --
TEACHER_LOGITS = "teacher_logits"  # the key of a training row's soft targets (float logits, one per label)


def soft_target_loss(model, inputs, config: DistillConfig, multi_depth: bool = False):
    """distillation_loss with the teacher's logits read from the batch (`teacher_logits`), so no teacher runs.

    With `multi_depth` the loss is taken on the classifier after every call of the shared layer
    (per_call_logits), weighted by depth as finetune's multi-depth loss is, so every depth learns
    the teacher and `convert --early-exit` can stop early. Rows without teacher logits (dev) get
    cross-entropy alone. Returns (loss, outputs), outputs None for the multi-depth training loss.
    """
    from ..hf.early_exit import depth_weights, per_call_logits  # lazy: numpy; the CLI imports this module at start

    inputs = dict(inputs)
    labels = inputs.pop("labels")
    teacher_logits = inputs.pop(TEACHER_LOGITS, None)
    teacher = None if teacher_logits is None else SimpleNamespace(logits=teacher_logits.float())
    if multi_depth and model.training:
        calls = per_call_logits(model, **inputs)
        losses = [distillation_loss(SimpleNamespace(logits=logits), teacher, labels, inputs["attention_mask"], config)
                  for logits in calls]
        return sum(w * loss for w, loss in zip(depth_weights(calls.shape[0]), losses)), None
    outputs = model(**inputs)
    return distillation_loss(outputs, teacher, labels, inputs["attention_mask"], config), outputs


def make_soft_target_trainer(student, train: EncodedDataset, dev: Optional[EncodedDataset], tokenizer, output_dir: Path,
                             config: DistillConfig, multi_depth: bool = False, callbacks=(), log: Callable[[str], None] = print):
    """A Trainer on rows that carry their teacher's logits (make_trainer's recipe, without a teacher model)."""
    from transformers import DataCollatorWithPadding

    args = training_arguments(
        output_dir, epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
        weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio, seed=config.seed,
        evaluate_each_epoch=dev is not None, save_strategy="steps", save_steps=config.save_steps,
    )
    args.remove_unused_columns = False  # else Trainer drops teacher_logits, which the model's forward does not name
    return loss_trainer(
        lambda model, inputs: soft_target_loss(model, inputs, config, multi_depth),
        model=student, args=args, train_dataset=train, eval_dataset=dev,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=accuracy_metric if dev is not None else None,
        callbacks=[epoch_accuracy_logger(log), step_logger(log), *callbacks],
    )
