"""The command's modules: main builds the parser from the subcommands, which share only common;
loading the command loads no Prefect (``--help`` and bad flags answer at once)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from flows.cli.main import SUBCOMMANDS, make_parser

NEEDS_PREFECT = False
CLI = Path(__file__).resolve().parents[3] / "flows" / "cli"


def _imported_modules(path: Path) -> set[str]:
    """The modules ``path`` imports from (``from X import y``: X) or imports (``import X``)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
    return modules


def test_the_subcommands_import_only_common_of_the_command_so_nothing_cycles():
    assert not _imported_modules(CLI / "__init__.py")  # a docstring only
    assert not {name for name in _imported_modules(CLI / "common.py") if name.startswith("flows")}
    for subcommand in SUBCOMMANDS:
        path = Path(str(subcommand.__file__))
        own = {name for name in _imported_modules(path) if name.startswith("flows.cli")}
        assert own == {"flows.cli.common"}, path


def test_every_subcommand_has_a_handler():
    parser = make_parser()
    for command in ("run", "sweep", "predict", "plan", "backtest"):
        args = parser.parse_args([command])
        assert callable(args.handler)


def test_loading_the_command_loads_no_prefect():
    code = "import sys, flows.cli.main; print('prefect' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
