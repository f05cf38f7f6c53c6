"""Knowledge distillation of the pruned student on transformers' Trainer.

Loss: alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * cross-entropy
on the labels (Hinton et al. 2015), plus optionally hidden_weight * MSE between the student's
hidden states after call i and the teacher's after call round(i * L_teacher / L_student)
(same width, so no projection is needed), over real (non-padding) tokens. alpha = 0 and
hidden_weight = 0 is plain fine-tuning (the ablation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence


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


def batches(dataset: EncodedDataset, collator, batch_size: int):
    for start in range(0, len(dataset), batch_size):
        yield collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])


def distillation_loss(student_outputs, teacher_outputs, labels, attention_mask, config: DistillConfig):
    """The loss above, from model outputs; hidden states are used only when hidden_weight > 0."""
    import torch.nn.functional as F

    ce = F.cross_entropy(student_outputs.logits, labels)
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
    import numpy as np
    import torch
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

    use_teacher = teacher is not None and (config.alpha > 0 or config.hidden_weight > 0)
    if use_teacher:
        teacher.eval()
        for parameter in teacher.parameters():
            parameter.requires_grad_(False)

    class DistillationTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            want_hidden = model.training and config.hidden_weight > 0
            outputs = model(**inputs, output_hidden_states=want_hidden)
            teacher_outputs = None
            if use_teacher and model.training:
                with torch.no_grad():
                    teacher_outputs = teacher(**inputs, output_hidden_states=want_hidden)
            loss = distillation_loss(outputs, teacher_outputs, labels, inputs["attention_mask"], config)
            inputs["labels"] = labels
            return (loss, outputs) if return_outputs else loss

    class LogEpochs(TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if metrics and "eval_accuracy" in metrics:
                log(f"epoch {state.epoch:.2f}: dev accuracy {metrics['eval_accuracy']:.4f}")

    def accuracy(prediction):
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        return {"accuracy": float((np.argmax(logits, axis=-1) == prediction.label_ids).mean())}

    args = TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size * 2,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,
        adam_beta2=0.98,
        adam_epsilon=1e-6,
        max_grad_norm=1.0,
        eval_strategy="epoch" if dev is not None else "no",
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        logging_steps=50,
        report_to=[],
        use_cpu=True,
        seed=config.seed,
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length",
        label_names=["labels"],
    )
    return DistillationTrainer(
        model=student,
        args=args,
        train_dataset=train,
        eval_dataset=dev,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=accuracy if dev is not None else None,
        callbacks=[LogEpochs()],
    )


def accuracy_of(model, dataset: EncodedDataset, tokenizer, batch_size: int = 128) -> float:
    """Fraction of `dataset` the model labels correctly (eval mode, float32)."""
    import torch
    from transformers import DataCollatorWithPadding

    collator = DataCollatorWithPadding(tokenizer)
    model.eval()
    correct = 0
    with torch.no_grad():
        for batch in batches(dataset, collator, batch_size):
            labels = batch.pop("labels")
            correct += int((model(**batch).logits.argmax(-1) == labels).sum())
    return correct / len(dataset)


def last_checkpoint(output_dir: Path) -> Optional[str]:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None

