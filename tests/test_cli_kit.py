"""taichi_softras.cli_kit, the command-line machinery every CLI shares (the CLIs themselves:
tests/test_main_cli.py, test_packaging.py, test_demos.py, test_reconstruction_train.py)."""

import argparse

import pytest

from taichi_softras import cli_kit


@pytest.mark.parametrize(
    "kind, text, ok",
    [
        (cli_kit.positive_float, "1e-4", True), (cli_kit.positive_float, "0", False),
        (cli_kit.positive_float, "inf", False), (cli_kit.positive_float, "nan", False),
        (cli_kit.finite_float, "-3.5", True), (cli_kit.finite_float, "east", False),
        (cli_kit.nonnegative_float, "0", True), (cli_kit.nonnegative_float, "-1e-9", False),
        (cli_kit.positive_int, "7", True), (cli_kit.positive_int, "0", False), (cli_kit.positive_int, "1.5", False),
        (cli_kit.count, "0", True), (cli_kit.count, "-1", False),
        (cli_kit.positive_int, "1" + "0" * 400, True),  # beyond float range: no OverflowError
    ],
)
def test_argument_types(kind, text, ok):
    if ok:
        assert kind(text) == (float(text) if isinstance(kind(text), float) else int(text))
    else:
        with pytest.raises(argparse.ArgumentTypeError, match=f"got {text!r}"):
            kind(text)


def parser():
    p = cli_kit.Parser(prog="tool", debug=True)
    p.add_argument("--n", type=cli_kit.positive_int, default=1, help="how many")
    return p


def test_run_one_line_errors(capsys):
    def body(argv):
        return parser().parse_args(argv).n

    assert cli_kit.run("tool", body, ["--n", "3"], exit=False) == 3
    assert cli_kit.run("tool", body, ["--n", "0"], exit=False) == 2
    assert capsys.readouterr().err == "tool: error: argument --n: expected a positive integer, got '0'\n"
    with pytest.raises(SystemExit) as exc:
        cli_kit.run("tool", body, ["--bogus"])
    assert exc.value.code == 2 and capsys.readouterr().err == "tool: error: unrecognized arguments: --bogus\n"
    with pytest.raises(cli_kit.UserError):  # --debug: the traceback instead
        cli_kit.run("tool", body, ["--n", "0", "--debug"])


def test_run_first_line_other_errors_and_interrupt(capsys):
    def fail(argv):
        raise ValueError("first line\nsecond line")

    assert cli_kit.run("tool", fail, [], errors=(ValueError,), exit=False) == 2
    assert capsys.readouterr().err == "tool: error: first line\n"
    with pytest.raises(ValueError):  # not a user error here: a bug keeps its traceback
        cli_kit.run("tool", fail, [], exit=False)

    def interrupted(argv):
        raise KeyboardInterrupt

    assert cli_kit.run("tool", interrupted, [], exit=False) == 130
    assert capsys.readouterr().err == "tool: interrupted\n"


def test_debug_option_first_and_defaults_in_help():
    text = parser().format_help()
    assert text.index("--debug") < text.index("--n")
    assert "(default: 1)" in text
