"""training.step_logger: what a long run in the background prints (finetune, its masked-LM warm-up, distil)."""

from __future__ import annotations

import re
from types import SimpleNamespace

from edge_albert.training import epoch_accuracy_logger, step_logger


def test_the_step_logger_shows_loss_rate_time_left_and_the_final_mean():
    lines = []
    callback = step_logger(lines.append, prefix="mlm ")
    state = SimpleNamespace(global_step=100, max_steps=400, epoch=0.5)  # a resumed run: its rate counts its own steps
    callback.on_train_begin(None, state, None)
    state.global_step = 150
    callback.on_log(None, state, None, logs={"loss": 0.4321, "learning_rate": 1e-4})
    callback.on_log(None, state, None, logs={"eval_accuracy": 0.9})  # not a training log: nothing
    state.global_step = 400
    callback.on_log(None, state, None, logs={"train_loss": 0.25, "train_runtime": 9.0})
    assert len(lines) == 2, lines
    assert re.fullmatch(r"mlm step 150/400  loss 0\.4321  [0-9.]+ steps/s  ETA \dh\d\dm", lines[0]), lines[0]
    assert re.fullmatch(r"mlm step 400/400  mean loss 0\.2500  done in \d+s", lines[1]), lines[1]


def test_the_epoch_logger_reports_dev_accuracy_only():
    lines = []
    callback = epoch_accuracy_logger(lines.append)
    callback.on_evaluate(None, SimpleNamespace(epoch=2.0), None, metrics={"eval_accuracy": 0.8123})
    callback.on_evaluate(None, SimpleNamespace(epoch=3.0), None, metrics={"eval_loss": 0.3})
    assert lines == ["epoch 2.00: dev accuracy 0.8123"]
