"""Every command's ``--help`` starts without TensorFlow or Keras (issue 16).

Each CLI runs in a fresh interpreter through ``runpy`` exactly as ``python -m`` would (same
``sys.argv[0]``), then the wrapper reports its exit status and whether ``tensorflow`` or
``keras`` reached ``sys.modules``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CLIS = ("train", "evaluate", "predict", "export", "gradcam", "experiments", "data")

_RUN_HELP = """
import runpy, sys
module = sys.argv[1]
sys.argv = ["-m", "--help"]
code = "no exit"
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print(f"exit={code} heavy={','.join(heavy) or 'none'}")
"""


@pytest.mark.parametrize("cli", CLIS)
def test_help_exits_0_without_importing_tensorflow_or_keras(cli):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", _RUN_HELP, f"landslide_tf.{cli}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"python -m landslide_tf.{cli}" in result.stdout  # the parser's own usage line
    last = result.stdout.strip().splitlines()[-1]
    assert last == "exit=0 heavy=none", last


def test_train_parser_choices_match_the_registries():
    """The parser's TF-free name lists equal the registries they stand for."""
    from landslide_tf.cli.train_args import build_parser
    from landslide_tf.training import distribute

    choices = {a.dest: a.choices for a in build_parser()._actions if a.choices}
    assert tuple(choices["strategy"]) == distribute.STRATEGIES == tuple(distribute._BUILDERS)


@pytest.mark.parametrize(
    "cli, argv",
    [(cli, ["--no-such-flag"]) for cli in (*CLIS, "encoder_weights")]
    + [("data", ["check", "--no-such-flag"]), ("predict", ["RUN", "--tta-transforms"])],
)
def test_a_bad_flag_is_one_line_and_exit_2(cli, argv, capsys):
    """Every command's parser (subcommands too) says a usage error in one line, exit 2."""
    import importlib

    main = importlib.import_module(f"landslide_tf.cli.{cli}").main
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and err[0].endswith("(see --help)"), err


@pytest.mark.parametrize("argv", [[], ["nonsense"]])
def test_the_console_script_without_a_known_command_is_one_line_exit_2(argv, capsys):
    """Review finding: `landslide-tf` alone printed the whole usage to stdout, exit 2; a usage
    error is one line on stderr everywhere else."""
    from landslide_tf.cli.main import COMMANDS, main

    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert captured.out == "" and len(err) == 1 and err[0].startswith("error: ")
    assert err[0].endswith("(see --help)") and all(name in err[0] for name in COMMANDS)
    assert main(["--help"]) == 0 and "commands:" in capsys.readouterr().out
