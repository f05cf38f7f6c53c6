"""The CLI shows the library's defaults instead of restating them (issue 10).

Each command's parsed defaults are compared with the library's own: the settings dataclasses' fields
and the signatures of the functions the command calls. An option with a default the test does not
map fails it, so a new literal default in cli.py is caught, not just a changed one.
"""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from click.core import ParameterSource

from edge_albert import cli


def field_defaults(settings, **renamed) -> dict:
    """A dataclass's defaults by field name; `renamed` maps a CLI name to its field (cli_name="field")."""
    defaults = {}
    for item in dataclasses.fields(settings):
        if item.default is not dataclasses.MISSING:
            defaults[item.name] = item.default
        elif item.default_factory is not dataclasses.MISSING:
            defaults[item.name] = item.default_factory()
    for cli_name, name in renamed.items():
        defaults[cli_name] = defaults.pop(name)
    return defaults


def signature_defaults(function, *names, **renamed) -> dict:
    """Defaults of `function`'s parameters `names`, and of renamed ones (cli_name="parameter")."""
    parameters = inspect.signature(function).parameters
    chosen = {name: parameters[name].default for name in names}
    chosen.update({cli_name: parameters[name].default for cli_name, name in renamed.items()})
    return chosen


def assert_defaults_match(command, args, library: dict, differ: dict = ()) -> None:
    """Every option with a default equals the library's; `differ` lists the deliberate exceptions
    as name: (cli value, library value)."""
    context = command.make_context(command.name, list(args))
    differ = dict(differ)
    for name, value in context.params.items():
        if context.get_parameter_source(name) is not ParameterSource.DEFAULT:
            continue  # the required arguments and options given in `args`
        if name in differ:
            assert (value, library[name]) == differ[name], name
        elif name in library:
            assert value == library[name], (name, value, library[name])
        else:  # not a library setting: only flags off and options left unset
            assert value in (None, False), f"{command.name} --{name} has default {value!r} from nowhere in the library"


def test_finetune_defaults_are_the_library_ones():
    from edge_albert import finetune

    library = field_defaults(finetune.FinetuneConfig, layers="num_hidden_layers")
    library.update(signature_defaults(finetune.finetune, "text_column", "label_column", "labels"))
    library["labels"] = ",".join(library["labels"])
    # the CLI trains on one thread unless asked; the library leaves torch its own count
    assert_defaults_match(cli.finetune, ["train.tsv", "-o", "out"], library, differ={"threads": (1, None)})


def test_compress_defaults_are_the_library_ones():
    from edge_albert.compress import AugmentConfig, CompressOptions, DistillConfig
    from edge_albert.compress.options import INITS

    library = field_defaults(DistillConfig)
    library.update(field_defaults(CompressOptions))
    library["augment"] = AugmentConfig().copies
    assert_defaults_match(cli.compress, ["teacher", "--train", "train.tsv", "-o", "out"], library)
    init = next(param for param in cli.compress.params if param.name == "init")
    assert tuple(init.type.choices) == INITS


def test_serve_defaults_are_the_library_ones():
    from edge_albert.serve import ServeConfig
    from edge_albert.serve.server import run_server

    library = field_defaults(ServeConfig, timeout="timeout_s")
    library.update(signature_defaults(run_server, "host", "port", "backend", "trusted_key", threads="num_threads"))
    assert_defaults_match(cli.serve, ["model.edgealbert"], library)


def test_serve_ray_defaults_are_the_library_ones():
    from edge_albert.serve.cluster import run_cluster

    library = signature_defaults(run_cluster, "address", "host", "port", "replicas", "max_texts", "trusted_key",
                                 threads="num_threads")
    assert_defaults_match(cli.serve_ray, ["model.edgealbert"], library)


def test_bench_defaults_are_the_library_ones():
    from edge_albert import bench

    library = signature_defaults(bench.run_benchmark, "batch", "runs", "warmup", "max_seconds", "backend",
                                 "trusted_key", "seq_lens")
    library["seq_lens"] = ",".join(map(str, library["seq_lens"]))
    library.update(signature_defaults(bench.run_texts_benchmark, "repeats"))
    assert signature_defaults(bench.run_texts_benchmark, "warmup")["warmup"] == library["warmup"]
    assert_defaults_match(cli.bench, ["model.edgealbert"], library)


@pytest.mark.parametrize("command", [cli.predict, cli.evaluate])
def test_predict_and_evaluate_batch_size_is_the_library_one(command):
    from edge_albert.evaluate import evaluate_bundle
    from edge_albert.tasks import load_model

    parsed = command.make_context(command.name, ["model.edgealbert", "data.tsv"]).params
    assert parsed["batch_size"] == inspect.signature(load_model).parameters["batch_size"].default
    assert parsed["batch_size"] == inspect.signature(evaluate_bundle).parameters["batch_size"].default


def test_the_cli_reads_these_defaults_without_the_heavy_libraries():
    heavy = ("numpy", "torch", "transformers", "tensorflow", "starlette", "ray")
    fresh = subprocess.run([sys.executable, "-c", f"import edge_albert.cli, sys; print([m for m in {heavy!r} if m in sys.modules])"],
                           capture_output=True, text=True, cwd=str(Path(__file__).resolve().parents[1]), timeout=120)
    assert fresh.returncode == 0 and fresh.stdout.strip() == "[]", fresh.stdout + fresh.stderr


def _commands():
    import click

    return [(name, command) for name, command in sorted(cli.main.commands.items()) if isinstance(command, click.Command)]


@pytest.mark.parametrize("name, command", _commands())
def test_every_option_has_help_text(name, command):
    """`edge-albert COMMAND --help` explains every option it lists (hidden aliases are not listed)."""
    import click

    options = [param for param in command.params if isinstance(param, click.Option) and not param.hidden]
    assert options, f"{name} has no options"
    assert [param.opts for param in options if not (param.help or "").strip()] == [], name
    assert (command.help or "").strip(), f"{name} has no description"


@pytest.mark.parametrize("new, old, read, expected", [
    ("--max-seq-len", "--max-length", lambda options: options.distill.max_length, 64),
    ("--text-pair-column", "--pair-column", lambda options: options.pair_column, "64"),
])
def test_compress_spells_options_as_the_other_commands_and_keeps_the_old_names(new, old, read, expected, monkeypatch):
    from click.testing import CliRunner

    import edge_albert.compress as compress_package
    from edge_albert.errors import CompressionError

    spelled = {option for param in cli.compress.params if not getattr(param, "hidden", False) for option in param.opts}
    assert new in spelled and old not in spelled  # --help shows only the common spelling
    seen = []

    def capture(teacher, train, out, dev, options, **kwargs):
        seen.append(read(options))
        raise CompressionError("captured")

    monkeypatch.setattr(compress_package, "compress", capture, raising=False)
    for flag in (new, old):
        result = CliRunner().invoke(cli.main, ["compress", "teacher", "--train", "train.tsv", "-o", "out", flag, "64"])
        assert result.stderr == "error: captured\n", result.output
    assert seen == [expected, expected]
