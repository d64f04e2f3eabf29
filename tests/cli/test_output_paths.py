"""Every file or folder a command writes is checked while its arguments are read (`cli.common.OutputPath`):
an `--out` under a file is one line and exit 1 before any training, evaluation or prediction runs."""

import click
import pytest
from click.testing import CliRunner

from cli.common import OutputPath
from cli.main import cli


def _commands(group=cli, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + (name,))
        else:
            yield prefix + (name,), command


def test_every_output_option_is_an_output_path():
    outputs = {" ".join(path): param.type for path, command in _commands() for param in command.params
               if param.name in ("out", "root")}
    assert len(outputs) >= 20 and {"train unet3d", "evaluate", "predict", "export", "synth"} <= set(outputs)
    assert {name for name, kind in outputs.items() if not isinstance(kind, OutputPath)} == set()


@pytest.mark.parametrize("command", [
    ("train", "unet3d", "--data", "{data}", "--out", "{out}"),
    ("evaluate", "--model", "{data}", "--data", "{data}", "--out", "{out}"),
    ("data", "check", "{data}", "--out", "{out}"),
    ("synth", "msd", "--out", "{out}"),
    ("export", "--model", "{data}", "--name", "x", "--root", "{out}"),
    ("experiment", "label-efficient", "--data", "{data}", "--out", "{out}"),
])
def test_an_output_under_a_file_is_one_line_before_any_work(command, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "afile").write_text("not a folder")
    out = tmp_path / "afile" / "deeper" / "out"
    args = [a.format(data=tmp_path / "data", out=out) for a in command]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert result.output == f"Error: {out}: cannot be written: {tmp_path / 'afile'} is a file, not a folder\n"
