"""Library errors name Python parameters; the CLI spells the same error with its flags."""

import click
from click.testing import CliRunner

from edge_albert.cli import reports_errors
from edge_albert.errors import ConversionError, EdgeAlbertError, output_error_type


def test_library_message_names_the_parameter():
    error = ConversionError("{max_seq_len} must be between 1 and 512, not 0", options=("max_seq_len",))
    assert str(error) == "max_seq_len must be between 1 and 512, not 0"
    assert error.spelled(lambda name: f"<{name}>") == "<max_seq_len> must be between 1 and 512, not 0"


def test_plain_message_is_unchanged_even_with_braces():
    error = EdgeAlbertError("labels {0: 'a'} do not match")
    assert str(error) == "labels {0: 'a'} do not match" == error.spelled(str.upper)


def test_output_error_types_keep_the_options():
    error = output_error_type(ConversionError)("{output} exists; pass {overwrite}", options=("output", "overwrite"))
    assert str(error) == "output exists; pass overwrite"


def test_cli_spells_options_as_the_commands_flags():
    @click.command()
    @click.argument("bundle")
    @click.option("-o", "--output-dir", "output_dir")
    @click.option("--max-seq-len", type=int)
    @reports_errors
    def command(bundle, output_dir, max_seq_len):
        raise ConversionError("{max_seq_len} is too long for {bundle}; {output_dir} and {not_a_param} untouched",
                              options=("max_seq_len", "bundle", "output_dir", "not_a_param"))

    result = CliRunner().invoke(command, ["b", "-o", "x", "--max-seq-len", "9"])
    assert result.exit_code == 1
    assert result.output.strip() == ("error: --max-seq-len is too long for BUNDLE; --output-dir and "
                                     "--not-a-param untouched")


def test_values_with_braces_need_no_escaping():
    path, text = "/tmp/a{b}", "16,{x}"
    error = ConversionError(f"{path} exists; {text!r} is bad; pass {{overwrite}}", options=("overwrite",))
    assert str(error) == "/tmp/a{b} exists; '16,{x}' is bad; pass overwrite"
    assert error.spelled(lambda name: "--" + name) == "/tmp/a{b} exists; '16,{x}' is bad; pass --overwrite"
