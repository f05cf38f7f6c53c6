"""The `edge-albert` command: thin click commands over library functions.

Every command catches EdgeAlbertError once and prints it as one line (no traceback).
Heavy libraries (numpy too, so `--help` stays quick) and the workstation side are imported inside
the commands that need them.
"""

from __future__ import annotations

import errno
import functools
import io
import json
import os
import sys
import time
from pathlib import Path

import click

from . import device_options as device
from . import quantization
from .atomic import check_writable_file
from .bundle import load_bundle, read_manifest
from .compress import AugmentConfig, CompressOptions, DistillConfig
from .compress.foreign_options import DistilOptions, TransferOptions
from .compress.options import INITS
from .data import DEFAULT_LABEL_COLUMN, DEFAULT_LABELS, DEFAULT_TEXT_COLUMN
from .errors import BenchError, BundleError, EdgeAlbertError, ServeError
from .extras import install_hint
from .finetune_config import FinetuneConfig
from .lifetime import Terminated, end_by_signal, ending_signals_interrupt
from .serve import options as serving
from .signing import committable_in, generate_key_pair
from .tflite_check import check_model_file
from .verbosity import set_verbose
from .version import __version__


def reports_errors(command):
    """Turn an EdgeAlbertError into `error: <message>` on stderr and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            with ending_signals_interrupt():  # SIGTERM/SIGHUP clean up as Ctrl-C does, then end by that signal
                return command(*args, **kwargs)
        except Terminated as exc:
            end_by_signal(exc.signum)
        except EdgeAlbertError as exc:
            click.echo(f"error: {exc.spelled(_flag_of)}", err=True)
            sys.exit(1)
        except BrokenPipeError:
            _stdout_to_devnull()
            click.echo("error: standard output was closed before all results were written", err=True)
            sys.exit(1)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG) or exc.filename:
                raise
            _stdout_to_devnull()
            click.echo(f"error: cannot write the output: {exc.strerror}", err=True)
            sys.exit(1)

    return wrapper


def _flag_of(name: str) -> str:
    """How the running command spells the library setting `name`: its long flag, or its argument."""
    context = click.get_current_context(silent=True)
    for param in context.command.params if context is not None else ():
        if param.name == name:
            if isinstance(param, click.Argument):
                return param.human_readable_name
            return max(param.opts, key=len)
    return "--" + name.replace("_", "-")


def _stdout_is_open() -> bool:
    """False when the command was started with stdout closed (`>&-`): Python then has no sys.stdout, and
    the next file opened would take descriptor 1."""
    if sys.stdout is None:
        return False
    try:
        descriptor = sys.stdout.fileno()
    except (io.UnsupportedOperation, AttributeError):
        return True  # an in-memory stream (click's CliRunner): open, without a descriptor
    except ValueError:
        return False  # closed
    try:
        os.fstat(descriptor)
    except OSError:
        return False
    return True


def _stdout_to_devnull() -> None:
    """Drop what is still buffered for a closed or full stdout, so exiting does not fail on it again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):  # not a real file (CliRunner)
        pass


REVISION_HELP = "Branch, tag or commit of a Hugging Face model id [default: main]."
TRUSTED_KEY_HELP = ("Public key (edge-albert keygen) the bundle must be signed with; default: "
                    "$EDGE_ALBERT_TRUSTED_KEY when set.")


def _stdin_lines():
    """stdin as UTF-8 lines: undecodable bytes become U+FFFD, and \\r, \\n and \\r\\n all end a line."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:
        return sys.stdin
    return io.TextIOWrapper(buffer, encoding="utf-8", errors="replace", newline=None)


def runtime_options(command):
    """The options every command that runs a bundle takes (predict, evaluate), declared once."""
    for option in reversed((
        click.option("--threads", type=click.IntRange(min=1), default=None, help="Interpreter threads (default: up to 4)."),
        click.option("--backend", default=None, help="Force ai_edge_litert, tflite_runtime or tensorflow."),
        click.option("--batch-size", type=click.IntRange(min=1), default=device.DEFAULT_BATCH_SIZE, show_default=True,
                     help="Texts per interpreter call."),
        click.option("--exit-value", type=click.FloatRange(min=0), default=None,
                     help="Early-exit bundles: patience or entropy threshold to use instead of the converted default."),
        click.option("--trusted-key", type=click.Path(dir_okay=False, path_type=str), default=None, help=TRUSTED_KEY_HELP),
    )):
        command = option(command)
    return command


@click.group()
@click.version_option(__version__, prog_name="edge-albert")
@click.option("-v", "--verbose", is_flag=True, help="Show the libraries' own logs (TensorFlow, LiteRT, transformers).")
def main(verbose: bool) -> None:
    """Convert fine-tuned ALBERT checkpoints to TensorFlow Lite bundles and run them on edge devices."""
    if not _stdout_is_open():
        click.echo("error: standard output is closed; redirect it to a file or to /dev/null instead", err=True)
        sys.exit(1)
    set_verbose(verbose)


@main.command()
@click.argument("bundle", type=click.Path(file_okay=False, path_type=str))
@click.argument("texts", nargs=-1)
@click.option("--jsonl", is_flag=True,
              help="Read JSON objects from stdin, one a line: text (+ text_pair), or question + context.")
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Keep only the k best labels' scores.")
@runtime_options
@reports_errors
def predict(bundle: str, texts: tuple, jsonl: bool, top_k, threads, backend, batch_size: int, exit_value,
            trusted_key) -> None:
    """Predict with BUNDLE: TEXT arguments, else one text per stdin line; JSON lines out."""
    from .predict import predict_records, records_from_lines
    from .tasks import load_model

    model = load_model(bundle, num_threads=threads, backend=backend, batch_size=batch_size, trusted_key=trusted_key)
    if exit_value is not None:
        _set_exit_value(model, exit_value)
    # Read lazily: results stream out as lines arrive.
    if not texts and _is_terminal(sys.stdin):  # typed at a prompt with no TEXT: say so rather than wait silently
        click.echo(STDIN_JSONL_HINT if jsonl else STDIN_HINT, err=True)
    lines = texts or _stdin_lines()  # records_from_lines decodes argv's undecodable bytes
    records = records_from_lines(lines, jsonl, model.task)
    for result in predict_records(model, records, batch_size=batch_size, top_k=top_k):
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        sys.stdout.flush()


STDIN_HINT = "reading texts from standard input, one per line; Ctrl-D to end (or give the texts as arguments)"
STDIN_JSONL_HINT = "reading JSON objects from standard input, one per line; Ctrl-D to end"


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


def _set_exit_value(model, value: float) -> None:
    if not hasattr(model, "set_exit_value"):
        raise BundleError(f"--exit-value applies to early-exit text-classification bundles, not {model.task}")
    model.set_exit_value(value)


@main.command()
@click.argument("bundles", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=str))
@click.option("--host", default=serving.DEFAULT_HOST, show_default=True, help="Address to listen on; anything but loopback needs --token-file.")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=serving.DEFAULT_PORT, show_default=True, help="0 picks a free port (printed).")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=str), help="File holding a bearer token every request except / and /healthz must carry.")
@click.option("--insecure-no-token", "allow_unauthenticated", is_flag=True, help="Allow a non-loopback --host without --token-file.")
@click.option("--max-batch-size", type=click.IntRange(min=1), default=serving.ServeConfig.max_batch_size, show_default=True, help="Records gathered into one micro-batch (1: no micro-batching).")
@click.option("--max-wait-ms", type=click.FloatRange(min=0), default=serving.ServeConfig.max_wait_ms, show_default=True, help="How long a batch waits for more requests (0: takes only those that arrived while the model was busy).")
@click.option("--model-batch-size", type=click.IntRange(min=1), default=serving.ServeConfig.model_batch_size, show_default=True, help="Rows per interpreter call: a micro-batch runs sorted by length in chunks this big, so short texts are not padded to long ones.")
@click.option("--max-queue", type=click.IntRange(min=1), default=serving.ServeConfig.max_queue, show_default=True, help="Requests waiting per model before 503.")
@click.option("--max-texts", type=click.IntRange(min=1), default=serving.DEFAULT_MAX_TEXTS, show_default=True, help="Records in one request before 413.")
@click.option("--max-body-bytes", type=click.IntRange(min=1), default=serving.ServeConfig.max_body_bytes, show_default=True, help="Request body size before 413.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=serving.ServeConfig.timeout_s, show_default=True, help="Seconds a request may wait and run before 504.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Interpreter threads per model (default: up to 4).")
@click.option("--backend", default=None, help="Force ai_edge_litert, tflite_runtime or tensorflow.")
@click.option("--trusted-key", type=click.Path(dir_okay=False, path_type=str), default=None, help=TRUSTED_KEY_HELP)
@reports_errors
def serve(bundles, host, port, token_file, allow_unauthenticated, max_batch_size, max_wait_ms, model_batch_size, max_queue,
          max_texts, max_body_bytes, timeout, threads, backend, trusted_key):
    """Serve BUNDLES over HTTP: JSON API, a page at /, /healthz, /readyz, /metrics (needs edge-albert[serve])."""
    try:
        from .serve.server import run_server
    except ImportError as exc:
        raise ServeError(f"serve needs the serve extra ({exc.name} is missing): {install_hint('litert,serve')}") from None

    config = serving.ServeConfig(max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                                 model_batch_size=model_batch_size, max_queue=max_queue, max_texts=max_texts,
                                 max_body_bytes=max_body_bytes, timeout_s=timeout)
    run_server(bundles, host=host, port=port, config=config, token_file=token_file,
               allow_unauthenticated=allow_unauthenticated, num_threads=threads, backend=backend,
               say=lambda line: click.echo(line, err=line.startswith("warning:")), trusted_key=trusted_key)


@main.command("serve-ray")
@click.argument("bundles", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=str))
@click.option("--address", default=None, help="Ray cluster to join: auto (the one `ray start` made here) or HEAD:6379 [default: start a local one].")
@click.option("--host", default=serving.DEFAULT_HOST, show_default=True, help="Address of Ray Serve's HTTP proxy; anything but loopback needs --token-file.")
@click.option("--port", type=click.IntRange(min=1, max=65535), default=serving.RAY_DEFAULT_PORT, show_default=True, help="Port of Ray Serve's HTTP proxy.")
@click.option("--replicas", type=click.IntRange(min=1), default=serving.DEFAULT_REPLICAS, show_default=True, help="Copies of each bundle, spread over the cluster's nodes.")
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=str), help="File holding the bearer token requests must carry.")
@click.option("--insecure-no-token", "allow_unauthenticated", is_flag=True, help="Allow a non-loopback --host without --token-file.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Interpreter threads per replica.")
@click.option("--max-texts", type=click.IntRange(min=1), default=serving.DEFAULT_MAX_TEXTS, show_default=True, help="Records in one request before 413.")
@click.option("--trusted-key", type=click.Path(dir_okay=False, path_type=str), default=None,
              help=TRUSTED_KEY_HELP + " The same path must hold the key on every node.")
@reports_errors
def serve_ray(bundles, address, host, port, replicas, token_file, allow_unauthenticated, threads, max_texts, trusted_key):
    """Serve BUNDLES with Ray Serve replicas on one machine or a Ray cluster (needs edge-albert[cluster])."""
    try:
        from .serve.cluster import run_cluster
    except ImportError as exc:
        raise ServeError(f"serve-ray needs the cluster extra ({exc.name} is missing): {install_hint('litert,cluster')}") from None

    run_cluster(bundles, address=address, host=host, port=port, replicas=replicas, token_file=token_file,
                allow_unauthenticated=allow_unauthenticated, num_threads=threads, max_texts=max_texts,
                say=lambda line: click.echo(line, err=line.startswith("warning:")), trusted_key=trusted_key)


def _progress_printer():
    """Stage messages on stderr with the elapsed time, so long conversions show where they are."""
    started = time.perf_counter()

    def say(message: str) -> None:
        click.echo(f"[{time.perf_counter() - started:6.1f}s] {message}", err=True)

    return say


@main.command()
@click.argument("checkpoint_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(path_type=str), help="Bundle directory to write (NAME.edgealbert).")
@click.option("--quantize", default=quantization.DEFAULT_MODE, show_default=True,
              help=f"{', '.join(quantization.MODES)}, a comma list, or {quantization.ALL} ({quantization.all_help()}).")
@click.option("--max-seq-len", type=int, default=None,
              help=f"Longest input the model takes [default: {quantization.DEFAULT_MAX_SEQ_LEN}, at most max_position_embeddings].")
@click.option("--graph", type=click.Choice(quantization.GRAPH_FORMS), default=quantization.DEFAULT_GRAPH_FORM, show_default=True, help="loop: one WHILE over the shared layer, any length; unrolled: fixed length, for full int8 and WHILE-less delegates.")
@click.option("--calibration-texts", type=click.Path(dir_okay=False), help="Texts (one per line) to calibrate full int8.")
@click.option("--samples", type=click.Path(dir_okay=False), help="Texts (one per line) to verify against PyTorch [default: a built-in varied set].")
@click.option("--per-tensor", is_flag=True, help="Per-tensor int8 weight scales for dense layers: runs on tflite-runtime 2.14.")
@click.option("--calibration-samples", type=click.IntRange(min=1), default=quantization.DEFAULT_CALIBRATION_SAMPLES, show_default=True, help="How many calibration texts full int8 uses (the first N).")
@click.option("--eval-data", type=click.Path(dir_okay=False, path_type=str), help="Labelled file (TSV/CSV/JSONL; SQuAD JSON for QA): score PyTorch and every variant, gate on the drop, default int8 calibration from its training split.")
@click.option("--max-accuracy-drop", type=click.FloatRange(min=0), default=quantization.DEFAULT_MAX_ACCURACY_DROP, show_default=True, help="Percentage points a variant may lose against PyTorch on --eval-data.")
@click.option("--text-column", default=None, help="Text column of --eval-data [default: sentence, else text].")
@click.option("--text-pair-column", default=None, help="Second text column of --eval-data, for sentence pairs.")
@click.option("--label-column", default=DEFAULT_LABEL_COLUMN, show_default=True, help="Label column of --eval-data (label names or integer ids).")
@click.option("--early-exit", default=None, help="patience=N or entropy=T: the loop stops per input when the rule fires (text classification, loop form; the value stays a runtime input).")
@click.option("--force", is_flag=True, help="Bundle a variant even if it fails verification or the accuracy gate.")
@click.option("--overwrite", is_flag=True, help="Replace an existing bundle at the output path.")
@click.option("--sign-key", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Ed25519 private key (edge-albert keygen): sign each bundle's manifest (manifest.sig).")
@click.option("--revision", default=None, help=REVISION_HELP)
@reports_errors
def convert(checkpoint_dir, output, quantize, max_seq_len, graph, calibration_texts, samples, per_tensor,
            calibration_samples, eval_data, max_accuracy_drop, text_column, text_pair_column, label_column, early_exit,
            force, overwrite, sign_key, revision):
    """Convert a Hugging Face ALBERT checkpoint into verified TFLite bundle(s).

    CHECKPOINT_DIR is a checkpoint directory or a Hugging Face model id (ORG/NAME), read from the
    Hugging Face cache (offline with HF_HUB_OFFLINE=1) or downloaded into it.
    """
    from .converters.accuracy_gate import accuracy_table
    from .converters.convert import convert_checkpoint
    from .converters.options import ConvertOptions
    from .converters.samples import read_text_lines
    from .report import conversion_table

    options = ConvertOptions(
        graph=graph, max_seq_len=max_seq_len, per_channel_dense=not per_tensor,
        calibration_texts=read_text_lines(calibration_texts) if calibration_texts else None,
        calibration_samples=calibration_samples, samples=read_text_lines(samples) if samples else None,
        eval_data=eval_data, text_column=text_column, text_pair_column=text_pair_column, label_column=label_column,
        max_accuracy_drop=max_accuracy_drop, early_exit=early_exit, force=force, overwrite=overwrite, sign_key=sign_key,
        revision=revision)
    result = convert_checkpoint(checkpoint_dir, output, quantize, options=options, progress=_progress_printer())
    click.echo(conversion_table(result.variants))
    if result.reference_evaluation is not None:
        click.echo("")
        click.echo(accuracy_table(result.reference_evaluation, result.variants))
    for variant in result.variants:
        if not variant.passed:
            advice = "" if variant.bundled or variant.check is None else "; --force bundles it anyway"
            click.echo(f"{variant.quantize}: {'FORCED' if variant.bundled else 'not bundled'}: {variant.failure}{advice}",
                       err=True)
    if any(not v.bundled for v in result.variants):
        sys.exit(1)


@main.command()
@click.argument("bundle", type=click.Path(file_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@reports_errors
def inspect(bundle, as_json):
    """Show BUNDLE's manifest and the size breakdown of its model (embeddings / shared layer / head)."""
    from .report import inspection_text

    loaded = load_bundle(bundle)
    check_model_file(loaded.model_path)  # the structure check loading runs: a sha256 can be updated with the bytes
    manifest = loaded.manifest
    click.echo(json.dumps(manifest, indent=2) if as_json else inspection_text(manifest))


@main.command()
@click.argument("train_file", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(path_type=str), help="Checkpoint directory to write.")
@click.option("--dev", "dev_file", type=click.Path(dir_okay=False, path_type=str), help="Labelled file to report accuracy on.")
@click.option("--text-column", default=DEFAULT_TEXT_COLUMN, show_default=True, help="Text column of the data files.")
@click.option("--text-pair-column", "pair_column", default=None, help="Second text column, for sentence pairs.")
@click.option("--pair-column", "old_pair_column", default=None, hidden=True, help="Deprecated: --text-pair-column.")
@click.option("--label-column", default=DEFAULT_LABEL_COLUMN, show_default=True, help="Label column (label names or integer ids).")
@click.option("--labels", default=",".join(DEFAULT_LABELS), show_default=True, help="Label names in index order.")
@click.option("--epochs", type=float, default=FinetuneConfig.epochs, show_default=True, help="Passes over the training data (fractions allowed).")
@click.option("--vocab-size", type=int, default=FinetuneConfig.vocab_size, show_default=True, help="SentencePiece pieces to train.")
@click.option("--hidden-size", type=int, default=FinetuneConfig.hidden_size, show_default=True, help="Width H of the shared layer.")
@click.option("--layers", type=int, default=FinetuneConfig.num_hidden_layers, show_default=True, help="Calls of the shared layer.")
# 1, not the library's None (torch's own thread count): one core by default, as compress trains, so a
# command-line run is repeatable and polite on a shared machine; --threads N asks for more.
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="PyTorch threads.")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=FinetuneConfig.learning_rate,
              show_default=True, help="Peak learning rate (AdamW).")
@click.option("--multi-depth", is_flag=True, help="Train the classifier after every layer call, losses weighted by depth (for --early-exit bundles).")
@click.option("--init-from", type=click.Path(file_okay=False, path_type=str), default=None, help="Continue from this checkpoint (directory or Hugging Face model id; its tokenizer and weights) instead of from scratch.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output directory.")
@reports_errors
def finetune(train_file, output, dev_file, text_column, pair_column, old_pair_column, label_column, labels, epochs,
             vocab_size, hidden_size, layers, threads, learning_rate, multi_depth, init_from, overwrite):
    """Train a SentencePiece tokenizer and a small ALBERT classifier from scratch (TSV, CSV or JSONL).

    Runs on transformers' Trainer; an interrupted run resumes from OUTPUT.partial/ when rerun with the same settings.
    """
    pair_column = pair_column or old_pair_column  # --pair-column: the name before convert/evaluate's was adopted
    from .finetune import finetune as run_finetune

    config = FinetuneConfig(epochs=epochs, vocab_size=vocab_size, hidden_size=hidden_size,
                            num_hidden_layers=layers, threads=threads, learning_rate=learning_rate,
                            multi_depth=multi_depth, init_from=init_from)
    result = run_finetune(train_file, output, dev_file, config, text_column=text_column, label_column=label_column,
                          pair_column=pair_column, labels=[n.strip() for n in labels.split(",")],
                          overwrite=overwrite, log=click.echo)
    click.echo(f"saved {result.out_dir} ({result.num_parameters:,} parameters) in {result.train_seconds:.0f} s")
    if result.dev_accuracy is not None:
        click.echo(f"dev accuracy {result.dev_accuracy:.4f} (saved weights reloaded in float32)")
    per_call = [entry["dev_accuracy_per_call"] for entry in result.history if "dev_accuracy_per_call" in entry]
    if per_call:
        click.echo("dev accuracy after each layer call: " + ", ".join(f"{a:.4f}" for a in per_call[-1]))


@main.command()
@click.argument("teacher_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--train", "train_file", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="Labelled training file (TSV, CSV or JSONL): importance and distillation data.")
@click.option("--dev", "dev_file", type=click.Path(dir_okay=False, path_type=str), help="Labelled file scored each epoch and at the end.")
@click.option("-o", "--output", required=True, type=click.Path(path_type=str), help="Student checkpoint directory to write.")
@click.option("--layers", type=int, default=None, help="Calls of the shared layer [default: the teacher's].")
@click.option("--heads", type=int, default=None, help="Attention heads to keep [default: all].")
@click.option("--remove-heads", type=int, default=None, help="Attention heads to remove (instead of --heads).")
@click.option("--ffn", type=int, default=None, help="FFN intermediate width [default: the teacher's].")
@click.option("--target-speedup", type=float, default=None,
              help="Choose calls, heads and FFN for at most 1/X of the teacher's compute (instead of the three above).")
@click.option("--epochs", type=float, default=DistillConfig.epochs, show_default=True, help="Distillation passes over the training data (fractions allowed).")
@click.option("--max-train-examples", type=int, default=None, help="Distil on a seeded random subset of this many rows.")
@click.option("--augment", type=click.IntRange(min=0), default=AugmentConfig.copies, show_default=True,
              help="Unlabelled augmented copies per training row (masking, n-grams), trained on the teacher's soft targets.")
@click.option("--importance-examples", type=int, default=CompressOptions.importance_examples, show_default=True,
              help="Training rows that score the heads and FFN neurons before pruning.")
@click.option("--learning-rate", type=float, default=DistillConfig.learning_rate, show_default=True, help="Peak learning rate of distillation.")
@click.option("--batch-size", type=int, default=DistillConfig.batch_size, show_default=True, help="Training rows per step.")
@click.option("--temperature", type=float, default=DistillConfig.temperature, show_default=True, help="Softmax temperature of the soft targets.")
@click.option("--alpha", type=float, default=DistillConfig.alpha, show_default=True,
              help="Weight of the soft targets (0: labels only).")
@click.option("--hidden-weight", type=float, default=DistillConfig.hidden_weight, show_default=True,
              help="Weight of hidden-state matching.")
@click.option("--init", type=click.Choice(INITS), default=CompressOptions.init, show_default=True,
              help="Start from the pruned teacher, or from random weights (ablation).")
@click.option("--max-seq-len", "max_length", type=int, default=DistillConfig.max_length, show_default=True,
              help="Longest training input in tokens; longer texts are cut.")
@click.option("--max-length", "old_max_length", type=int, default=None, hidden=True, help="Deprecated: --max-seq-len.")
@click.option("--text-column", default=DEFAULT_TEXT_COLUMN, show_default=True, help="Text column of the data files.")
@click.option("--text-pair-column", "pair_column", default=None, help="Second text column, for sentence pairs.")
@click.option("--pair-column", "old_pair_column", default=None, hidden=True, help="Deprecated: --text-pair-column.")
@click.option("--label-column", default=DEFAULT_LABEL_COLUMN, show_default=True, help="Label column (label names or integer ids).")
@click.option("--threads", type=click.IntRange(min=1), default=DistillConfig.threads, show_default=True, help="PyTorch threads.")
@click.option("--seed", type=int, default=DistillConfig.seed, show_default=True, help="Seed of sampling, augmentation and training.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output directory.")
@click.option("--restart", is_flag=True, help="Discard an interrupted run's staging directory instead of resuming.")
@reports_errors
def compress(teacher_dir, train_file, dev_file, output, layers, heads, remove_heads, ffn, target_speedup, epochs,
             max_train_examples, augment, importance_examples, learning_rate, batch_size, temperature, alpha, hidden_weight,
             init, max_length, old_max_length, text_column, pair_column, old_pair_column, label_column, threads, seed,
             overwrite, restart):
    """Prune TEACHER_DIR (depth, heads, FFN width) and distil it into a student checkpoint.

    TEACHER_DIR is a checkpoint directory or a Hugging Face model id (ORG/NAME).
    """
    from .compress import compress as run_compress  # lazy: this name loads compress/run.py (numpy) on first use

    # --max-length and --pair-column: compress's names before the other commands' were adopted
    max_length = old_max_length if old_max_length is not None else max_length
    pair_column = pair_column or old_pair_column
    distill = DistillConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, temperature=temperature,
                            alpha=alpha, hidden_weight=hidden_weight, max_length=max_length, seed=seed, threads=threads)
    options = CompressOptions(layers=layers, heads=heads, remove_heads=remove_heads, ffn=ffn,
                              target_speedup=target_speedup, init=init, importance_examples=importance_examples,
                              max_train_examples=max_train_examples,
                              text_column=text_column, label_column=label_column, pair_column=pair_column,
                              distill=distill, augment=AugmentConfig(copies=augment))
    result = run_compress(teacher_dir, train_file, output, dev_file, options, overwrite=overwrite, restart=restart,
                          log=click.echo)
    click.echo(f"saved {result.out_dir} ({result.parameters:,} parameters, removed heads {result.removed_heads or 'none'}) "
               f"in {result.seconds:.0f} s")
    if result.dev_accuracy is not None:
        click.echo(f"dev accuracy {result.dev_accuracy:.4f} (teacher {result.teacher_dev_accuracy:.4f})")


def _transfer_options(labels, text_column, pair_column, label_column, augment, augment_seed, teacher_max_length,
                      teacher_batch_size, threads):
    return TransferOptions(labels=tuple(n.strip() for n in labels.split(",")), text_column=text_column,
                           pair_column=pair_column, label_column=label_column, augment=AugmentConfig(copies=augment),
                           augment_seed=augment_seed, teacher_max_length=teacher_max_length,
                           teacher_batch_size=teacher_batch_size, threads=threads)


def transfer_options(command):
    """The transfer-set options distill and teacher-outputs share (the same texts must give the same digest)."""
    for option in reversed((
        click.option("--labels", default=",".join(DEFAULT_LABELS), show_default=True, help="Label names in index order: the teacher's id2label must be these."),
        click.option("--text-column", default=DEFAULT_TEXT_COLUMN, show_default=True, help="Text column of the data files."),
        click.option("--text-pair-column", "pair_column", default=None, help="Second text column, for sentence pairs."),
        click.option("--label-column", default=DEFAULT_LABEL_COLUMN, show_default=True, help="Label column (label names or integer ids)."),
        click.option("--augment", type=click.IntRange(min=0), default=TransferOptions().augment.copies, show_default=True, help="Unlabelled augmented copies per training row (masking, n-grams), trained on the teacher's soft targets."),
        click.option("--augment-seed", type=click.IntRange(min=0), default=TransferOptions.augment_seed, show_default=True, help="Seed of the augmented texts."),
        click.option("--teacher-max-length", type=click.IntRange(min=1), default=TransferOptions.teacher_max_length, show_default=True, help="The teacher's truncation, in its own tokens."),
        click.option("--teacher-batch-size", type=click.IntRange(min=1), default=TransferOptions.teacher_batch_size, show_default=True, help="Rows per teacher call (rows sorted by length)."),
        click.option("--threads", type=click.IntRange(min=1), default=TransferOptions.threads, show_default=True, help="torch threads (teacher and student)."),
    )):
        command = option(command)
    return command


@main.command("teacher-outputs")
@click.argument("teacher_dir", type=click.Path(file_okay=False, path_type=str))
@click.argument("train_file", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=str), help="File to write (NAME.safetensors).")
@transfer_options
@click.option("--overwrite", is_flag=True, help="Replace an existing file.")
@reports_errors
def teacher_outputs(teacher_dir, train_file, output, labels, text_column, pair_column, label_column, augment, augment_seed,
                    teacher_max_length, teacher_batch_size, threads, overwrite):
    """Compute TEACHER_DIR's logits on TRAIN_FILE (+ --augment copies) once, for distill --teacher-outputs.

    TEACHER_DIR: any transformers sequence classifier with its tokenizer. Resumes from OUTPUT.partial/.
    """
    from .compress.foreign import write_teacher_outputs

    options = _transfer_options(labels, text_column, pair_column, label_column, augment, augment_seed,
                                teacher_max_length, teacher_batch_size, threads)
    result = write_teacher_outputs(teacher_dir, train_file, output, options, overwrite=overwrite,
                                   log=lambda line: click.echo(line, err=True))
    click.echo(f"wrote {result.path}: {result.logits.shape[0]} rows x {result.logits.shape[1]} labels "
               f"(sha256 {result.file_sha256})")


@main.command()
@click.argument("train_file", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(path_type=str), help="Student checkpoint directory to write.")
@click.option("--teacher", "teacher_dir", type=click.Path(file_okay=False, path_type=str), default=None, help="Teacher: any transformers sequence classifier directory with its tokenizer.")
@click.option("--teacher-outputs", "teacher_outputs_file", type=click.Path(dir_okay=False, path_type=str), default=None, help="Train from this teacher-outputs file instead of running the teacher.")
@click.option("--student", "student_dir", type=click.Path(file_okay=False, path_type=str), default=None, help="ALBERT checkpoint to start from [default: a new one from scratch, its tokenizer trained as finetune does].")
@click.option("--dev", "dev_file", type=click.Path(dir_okay=False, path_type=str), help="Labelled file scored each epoch and at the end.")
@transfer_options
@click.option("--multi-depth", is_flag=True, help="Distil into the classifier after every layer call, losses weighted by depth (for convert --early-exit).")
@click.option("--epochs", type=float, default=DistillConfig.epochs, show_default=True, help="Passes over the transfer set (fractions allowed).")
@click.option("--learning-rate", type=float, default=DistillConfig.learning_rate, show_default=True, help="Peak learning rate of distillation.")
@click.option("--batch-size", type=int, default=DistillConfig.batch_size, show_default=True, help="Training rows per step.")
@click.option("--temperature", type=float, default=DistillConfig.temperature, show_default=True, help="Softmax temperature of the soft targets.")
@click.option("--alpha", type=float, default=DistillConfig.alpha, show_default=True, help="Weight of the soft targets; 1 - alpha weighs the labels.")
@click.option("--max-length", type=int, default=DistillConfig.max_length, show_default=True, help="The student's truncation, in its own tokens.")
@click.option("--save-steps", type=click.IntRange(min=1), default=DistillConfig.save_steps, show_default=True, help="Trainer checkpoint interval (resume points).")
@click.option("--seed", type=int, default=DistillConfig.seed, show_default=True, help="Seed of the student's initialisation and of training.")
@click.option("--vocab-size", type=int, default=FinetuneConfig.vocab_size, show_default=True, help="From scratch: SentencePiece pieces.")
@click.option("--embedding-size", type=int, default=FinetuneConfig.embedding_size, show_default=True, help="From scratch.")
@click.option("--hidden-size", type=int, default=FinetuneConfig.hidden_size, show_default=True, help="From scratch.")
@click.option("--layers", type=int, default=FinetuneConfig.num_hidden_layers, show_default=True, help="From scratch: calls of the shared layer.")
@click.option("--heads", type=int, default=FinetuneConfig.num_attention_heads, show_default=True, help="From scratch.")
@click.option("--ffn", type=int, default=FinetuneConfig.intermediate_size, show_default=True, help="From scratch: FFN width.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=str), default=None, help="Where --teacher's outputs are cached [default: .teacher-outputs/ beside the output].")
@click.option("--overwrite", is_flag=True, help="Replace an existing output directory.")
@click.option("--restart", is_flag=True, help="Discard an interrupted run's staging directory instead of resuming.")
@reports_errors
def distill(train_file, output, teacher_dir, teacher_outputs_file, student_dir, dev_file, labels, text_column, pair_column,
            label_column, augment, augment_seed, teacher_max_length, teacher_batch_size, threads, multi_depth, epochs,
            learning_rate, batch_size, temperature, alpha, max_length, save_steps, seed, vocab_size, embedding_size,
            hidden_size, layers, heads, ffn, cache_dir, overwrite, restart):
    """Distil any transformers sequence classifier into an ALBERT student (each with its own tokenizer).

    The teacher's outputs are computed once and cached (or read from --teacher-outputs); training
    resumes from OUTPUT.partial/ when rerun with the same settings.
    """
    from .compress.foreign import distil

    transfer = _transfer_options(labels, text_column, pair_column, label_column, augment, augment_seed,
                                 teacher_max_length, teacher_batch_size, threads)
    config = DistillConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, temperature=temperature,
                           alpha=alpha, max_length=max_length, seed=seed, save_steps=save_steps, threads=threads)
    scratch = FinetuneConfig(vocab_size=vocab_size, embedding_size=embedding_size, hidden_size=hidden_size,
                             num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=ffn, seed=seed,
                             threads=threads)
    result = distil(train_file, output, teacher_dir=teacher_dir, teacher_outputs=teacher_outputs_file,
                    student_dir=student_dir, dev_path=dev_file,
                    options=DistilOptions(transfer=transfer, distill=config, multi_depth=multi_depth, scratch=scratch),
                    cache_dir=cache_dir, overwrite=overwrite, restart=restart,
                    log=lambda line: click.echo(line, err=True))  # progress on stderr; the result on stdout
    click.echo(f"saved {result.out_dir} ({result.parameters:,} parameters) in {result.seconds:.0f} s; teacher outputs "
               f"{'read from' if result.teacher_outputs_cached else 'computed into'} {result.teacher_outputs}")
    if result.dev_accuracy is not None:
        teacher = f" (teacher {result.teacher_dev_accuracy:.4f})" if result.teacher_dev_accuracy is not None else ""
        click.echo(f"dev accuracy {result.dev_accuracy:.4f}{teacher}")
    if result.dev_accuracy_per_call:
        click.echo("dev accuracy after each layer call: " + ", ".join(f"{a:.4f}" for a in result.dev_accuracy_per_call))


@main.command("export-android")
@click.argument("bundle", type=click.Path(file_okay=False, path_type=str))
@click.argument("assets_dir", type=click.Path(path_type=str))
@click.option("--overwrite", is_flag=True, help="Replace model.tflite, manifest.json, vocab.json, examples.json there.")
@click.option("--trusted-key", type=click.Path(dir_okay=False, path_type=str), default=None, help=TRUSTED_KEY_HELP)
@reports_errors
def export_android(bundle, assets_dir, overwrite, trusted_key):
    """Check that the Android demo can run BUNDLE and write its assets into ASSETS_DIR."""
    from .android_export import export_android as run_export

    result = run_export(bundle, assets_dir, overwrite=overwrite, trusted_key=trusted_key)
    length = result.android["sequence_length"] or "dynamic"
    click.echo(f"wrote {', '.join(sorted(result.files))} to {result.assets_dir} "
               f"({result.android['graph']} graph, input length {length})")


@main.command("export-mediapipe")
@click.argument("bundle", type=click.Path(file_okay=False, path_type=str))
@click.argument("out", type=click.Path(dir_okay=False, path_type=str))
@click.option("--eval-data", type=click.Path(dir_okay=False, path_type=str),
              help="Texts to verify on: a labelled TSV/CSV/JSONL (its text column) or one text a line [default: built-in texts with capitals, accents and quotes].")
@click.option("--mediapipe-python", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Python with mediapipe 0.10.21 (make mediapipe-venv) [default: $EDGE_ALBERT_MEDIAPIPE_PYTHON, else this one].")
@click.option("--force", is_flag=True, help="Write the model even if MediaPipe's TextClassifier disagrees with the bundle.")
@click.option("--overwrite", is_flag=True, help="Replace an existing OUT.")
@click.option("--trusted-key", type=click.Path(dir_okay=False, path_type=str), default=None, help=TRUSTED_KEY_HELP)
@reports_errors
def export_mediapipe(bundle, out, eval_data, mediapipe_python, force, overwrite, trusted_key):
    """Write OUT.tflite for MediaPipe Tasks' TextClassifier (Python, web, Android), verified against BUNDLE."""
    from .mediapipe_export.export import export_mediapipe as run_export, report_text

    texts = _read_texts(eval_data, read_manifest(bundle).get("labels") or []) if eval_data else None
    result = run_export(bundle, out, texts=texts, force=force, overwrite=overwrite, mediapipe_python=mediapipe_python,
                        trusted_key=trusted_key, warn=lambda line: click.echo(f"warning: {line}", err=True))
    click.echo(report_text(result))


@main.command()
@click.argument("bundle", type=click.Path(file_okay=False, path_type=str))
@click.argument("data", type=click.Path(dir_okay=False, path_type=str))
@click.option("--text-column", default=None, help="Text column [default: sentence, else text].")
@click.option("--text-pair-column", default=None, help="Second text column, for sentence pairs.")
@click.option("--label-column", default=DEFAULT_LABEL_COLUMN, show_default=True, help="Label column (label names or integer ids).")
@click.option("--reference", "reference_dir", type=click.Path(file_okay=False, path_type=str),
              help="Hugging Face checkpoint to compare with (runs PyTorch: needs torch and transformers).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=str), help="Write the full report (predictions included) as JSON.")
@runtime_options
@reports_errors
def evaluate(bundle, data, text_column, text_pair_column, label_column, reference_dir, json_out, threads, backend,
             batch_size, exit_value, trusted_key):
    """Score BUNDLE on labelled DATA: accuracy, macro P/R/F1, confusion (TSV/CSV/JSONL); EM/F1 (SQuAD JSON)."""

    from .evaluate import evaluate_bundle, report_text

    if json_out:
        check_writable_file(json_out)
    options = dict(text_column=text_column, text_pair_column=text_pair_column, label_column=label_column,
                   num_threads=threads, backend=backend, batch_size=batch_size, progress=_progress_printer(),
                   exit_value=exit_value, trusted_key=trusted_key)
    if reference_dir is None:
        report = evaluate_bundle(bundle, data, **options)
    else:  # the PyTorch reference is workstation code: it lives with the converter
        from .converters.accuracy_gate import evaluate_against_reference

        report = evaluate_against_reference(bundle, data, reference_dir, **options)
    click.echo(report_text(report))
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
        click.echo(f"wrote {json_out}", err=True)


@main.command()
@click.argument("bundle", type=click.Path(file_okay=False, path_type=str))
@click.option("--target", default=None, help="Check budgets: rpi4, rpi5, android-arm64, x86-host or a .toml path; exit 3 when one is exceeded. ARM targets only on their device.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Interpreter threads [default: the target's, else up to 4].")
@click.option("--seq-lens", default=",".join(map(str, device.DEFAULT_SEQ_LENS)), show_default=True, help="Comma list of input lengths in tokens ([CLS] and [SEP] included).")
@click.option("--batch-size", "batch", type=click.IntRange(min=1), default=device.DEFAULT_BENCH_BATCH, show_default=True, help="Texts per interpreter call.")
@click.option("--batch", "old_batch", type=click.IntRange(min=1), default=None, hidden=True, help="Deprecated: --batch-size.")
@click.option("--runs", type=click.IntRange(min=1), default=device.DEFAULT_RUNS, show_default=True, help="Measured runs per length.")
@click.option("--warmup", type=click.IntRange(min=0), default=device.DEFAULT_WARMUP, show_default=True, help="Untimed runs per length first.")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=device.DEFAULT_MAX_SECONDS, show_default=True, help="Stop measuring a length after this long.")
@click.option("--backend", default=None, help="Force ai_edge_litert, tflite_runtime or tensorflow.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=str), help="Write the full result as JSON.")
@click.option("--markdown", "markdown_out", type=click.Path(dir_okay=False, path_type=str), help="Write the result as Markdown.")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False, path_type=str), help="Write a latency chart (PNG; needs matplotlib).")
@click.option("--texts", "texts_file", type=click.Path(dir_okay=False, path_type=str), help="Text classifiers: time each real text of FILE alone instead (one text a line, or a labelled TSV/CSV/JSONL); early-exit bundles also report the exit distribution.")
@click.option("--repeats", type=click.IntRange(min=1), default=device.DEFAULT_REPEATS, show_default=True, help="With --texts: passes over the texts (each text's median counts).")
@click.option("--exit-value", type=click.FloatRange(min=0), default=None, help="Early-exit bundles: patience or entropy threshold to use instead of the converted default.")
@click.option("--trusted-key", type=click.Path(dir_okay=False, path_type=str), default=None, help=TRUSTED_KEY_HELP)
@reports_errors
def bench(bundle, target, threads, seq_lens, batch, old_batch, runs, warmup, max_seconds, backend, json_out,
          markdown_out, plot_out, texts_file, repeats, exit_value, trusted_key):
    """Measure BUNDLE per sequence length: latency percentiles, load time, first inference, memory."""
    from . import bench as measure
    from .runtime import check_batch


    if exit_value is not None and not texts_file:  # early exit depends on the text: only real texts measure it
        raise BenchError("{exit_value} needs {texts_file}: an early-exit bundle's speed depends on the texts, so it "
                         "is measured over real ones (bench BUNDLE --texts FILE --exit-value V)",
                         options=("exit_value", "texts_file"))
    for written in (json_out, markdown_out, plot_out):
        if written:
            check_writable_file(written)
    if texts_file:
        _bench_texts(bundle, texts_file, threads, backend, repeats, warmup, exit_value, json_out, trusted_key)
        return
    # --batch: bench's name before predict/evaluate's --batch-size was adopted; errors name the flag typed
    batch = check_batch(old_batch if old_batch is not None else batch,
                        "old_batch" if old_batch is not None else "batch")

    result = measure.run_benchmark_for_target(
        bundle, target, warn=lambda warning: click.echo(f"warning: {warning}", err=True),
        seq_lens=measure.parse_seq_lens(seq_lens), batch=batch, runs=runs, warmup=warmup, max_seconds=max_seconds,
        threads=threads, backend=backend, progress=measure.progress_printer(), trusted_key=trusted_key)
    click.echo(measure.result_text(result))
    for written in measure.write_outputs(result, json_out, markdown_out, plot_out):
        click.echo(f"wrote {written}", err=True)
    if result.budget_check is not None:
        check = result.budget_check
        if not check["passed"]:
            click.echo(f"budget exceeded ({check['target']}, {check['file']}):", err=True)
            for line in measure.exceeded_lines(check):
                click.echo(f"  {line}", err=True)
            sys.exit(measure.BUDGET_EXCEEDED_EXIT)
        click.echo(f"all {len(check['checked'])} budgets of {check['target']} met", err=True)


def _bench_texts(bundle, texts_file, threads, backend, repeats, warmup, exit_value, json_out, trusted_key) -> None:
    from .bench import run_texts_benchmark, texts_result_text
    from .tasks import TextClassifier, load_model

    model = load_model(bundle, num_threads=threads, backend=backend, batch_size=1, trusted_key=trusted_key)
    if not isinstance(model, TextClassifier):
        raise EdgeAlbertError(f"bench --texts measures text classifiers; {bundle} is {model.task}")
    if exit_value is not None:
        _set_exit_value(model, exit_value)
    result = run_texts_benchmark(model, _read_texts(texts_file, model.labels), repeats=repeats, warmup=warmup)
    click.echo(texts_result_text(result))
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(result.to_dict(with_rows=True), indent=2) + "\n")
        click.echo(f"wrote {json_out}", err=True)


def _read_texts(path: str, labels) -> list:
    """Texts of a labelled TSV/CSV/JSONL file (its text column), else one text per line."""
    if Path(path).suffix.lower() in (".tsv", ".csv", ".jsonl"):
        from .evaluate import load_eval_data

        return load_eval_data(path, "text-classification", labels).texts()[0]
    from .converters.samples import read_text_lines

    return read_text_lines(path)


@main.command()
@click.argument("private_key", type=click.Path(dir_okay=False, path_type=str))
@click.option("--overwrite", is_flag=True, help="Replace existing key files.")
@reports_errors
def keygen(private_key, overwrite):
    """Make an Ed25519 key pair: PRIVATE_KEY for convert --sign-key, PRIVATE_KEY.pub for --trusted-key."""
    private_path, public_path = generate_key_pair(private_key, overwrite=overwrite)
    click.echo(f"wrote {private_path} (keep it secret) and {public_path} (copy it to devices)")
    tree = committable_in(private_path)
    if tree is not None:
        click.echo(f"warning: {private_path} is inside the git working tree {tree} and not ignored by it: "
                   "keep it out of commits (add it to .gitignore, or keep keys outside the repository)", err=True)


if __name__ == "__main__":
    main()
