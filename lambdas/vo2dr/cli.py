"""The ``vo2dr`` console script. Thin: each subcommand lives in ``vo2dr.commands.<name>`` with
``add_parser(subparsers)`` and ``run(args) -> int``; the logic lives in plain modules.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from vo2dr import __version__
from vo2dr.exceptions import Vo2drError
from vo2dr.settings import VARIABLES

COMMANDS = ("backup", "list", "verify", "restore", "drill", "status")


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (each defaults to its environment variable)")
    for name, (var, flag) in VARIABLES.items():
        group.add_argument(flag, dest=f"setting_{name}", metavar=var, default=None,
                           help=f"defaults to ${var}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vo2dr", description="Backups and disaster recovery for the VO2Max Training App.")
    parser.add_argument("--version", action="version", version=f"vo2dr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"vo2dr.commands.{name}")
        command_parser = module.add_parser(sub)
        _add_settings_flags(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def settings_overrides(args: argparse.Namespace) -> dict[str, str | None]:
    return {name: getattr(args, f"setting_{name}", None) for name in VARIABLES}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args))
    except Vo2drError as exc:
        print(f"vo2dr {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vo2dr {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
