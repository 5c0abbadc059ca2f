"""The ``vo2dr`` console script. Thin: each subcommand lives in ``vo2dr.commands.<name>`` with
``add_parser(subparsers)`` and ``run(args) -> int``; the logic lives in plain modules.

This module is the error boundary. Each subcommand gets only its own flags and the flags of
the settings it reads (:data:`vo2dr.settings.COMMAND_SETTINGS`). Logging is configured once,
here: one prefixed line per warning on stderr, library warnings included. Every error ends as
one line naming the cause, with an exit code from :mod:`vo2dr.exitcodes`: a configuration
error (3) is never mistaken for a breach (1) or a failed run (2), and an unexpected exception
(a bug) has its own code (70).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from typing import NoReturn

from vo2dr import __version__, startup
from vo2dr.exceptions import ConfigError, SpaceError, Vo2drError, one_line
from vo2dr.exitcodes import TABLE, ExitCode
from vo2dr.settings import COMMAND_SETTINGS, DESCRIPTIONS, VARIABLES, Settings

COMMANDS = ("backup", "list", "verify", "restore", "drill", "status", "report", "prune")


class Parser(argparse.ArgumentParser):
    """A usage error is a configuration error: exit 3 with one line (``--help`` has the rest)."""

    def error(self, message: str) -> NoReturn:
        self.exit(int(ExitCode.CONFIG), f"{self.prog}: error: {message} (see {self.prog} "
                                        "--help)\n")


def _add_settings_flags(parser: argparse.ArgumentParser, command: str) -> None:
    group = parser.add_argument_group(
        "settings (each flag overrides its environment variable)")
    for name in COMMAND_SETTINGS[command]:
        var, flag = VARIABLES[name]
        if flag in parser._option_string_actions:
            continue  # the command has this flag itself (status --state-file)
        group.add_argument(flag, dest=f"setting_{name}", metavar=var, default=None,
                           help=f"{DESCRIPTIONS[name]} (${var})")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="vo2dr", description="Backups and disaster recovery for the VO2Max Training App.",
        epilog=TABLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"vo2dr {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="log at debug level and show the traceback of an internal error")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at info level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"vo2dr.commands.{name}")
        command_parser = module.add_parser(sub)
        command_parser.epilog = "\n".join(filter(None, (command_parser.epilog, TABLE)))
        _add_settings_flags(command_parser, name)
        command_parser.set_defaults(_run=module.run)
    return parser


def settings_overrides(args: argparse.Namespace) -> dict[str, str | None]:
    return {name: getattr(args, f"setting_{name}", None) for name in VARIABLES}


def load_settings(args: argparse.Namespace, *, required: tuple[str, ...] = (),
                  strategy: bool = False) -> Settings:
    """The command's settings (environment, then its flags), validated before anything
    touches the network."""
    settings = Settings.from_env(overrides=settings_overrides(args))
    command = getattr(args, "command", None)
    settings.validate(required=required, strategy=strategy,
                      names=COMMAND_SETTINGS.get(command) if command else None)
    return settings


# -- argparse types: numbers must make sense ----------------------------------------------------

def non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative: use 0 or more")
    return value


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not positive: use 1 or more")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


# -- logging, once ------------------------------------------------------------------------------

class _PrefixFormatter(logging.Formatter):
    def __init__(self, command: str, whole: bool = False) -> None:
        super().__init__()
        self.command = command
        self.whole = whole

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name == "py.warnings":  # "file:line: Category: text\n  source line"
            message = one_line(message.split(": ", 1)[-1])
        elif not record.name.startswith("vo2dr"):
            # A library's (azure-identity lists every credential it tried on 15 lines): the
            # first line, named by its logger; --debug shows it whole.
            message = f"{record.name}: {message if self.whole else one_line(message)}"
        return f"vo2dr {self.command}: {record.levelname.lower()}: {message}"


def configure_cli_logging(command: str, level: int = logging.WARNING) -> None:
    """One handler on stderr; Python warnings go through it too (``captureWarnings``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrefixFormatter(command, whole=level <= logging.DEBUG))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # False first: True is a no-op once set, even if warnings.showwarning was put back since.
    logging.captureWarnings(False)
    logging.captureWarnings(True)
    for noisy in ("botocore", "boto3", "urllib3", "google", "azure"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # The Encryption SDK logs every KMS failure as an ERROR with a traceback, then raises it;
    # that error is already the command's one line, so its log is only shown with --debug.
    logging.getLogger("aws_encryption_sdk").setLevel(
        logging.DEBUG if level <= logging.DEBUG else logging.CRITICAL)


@startup.entry_point
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    configure_cli_logging(args.command, level)
    prefix = f"vo2dr {args.command}"
    try:
        return int(args._run(args))
    except ConfigError as exc:
        print(f"{prefix}: configuration error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    except SpaceError as exc:  # its own code: the fix is room on the spool volume, not a retry
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return ExitCode.NO_SPACE
    except Vo2drError as exc:
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except OSError as exc:
        # The local machine said no (disk full, a directory not writable): not a bug.
        print(f"{prefix}: error: {type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
        return ExitCode.FAILED
    except Exception as exc:  # noqa: BLE001 - the boundary: a bug gets one line and exit 70
        if args.debug:
            traceback.print_exc()
        print(f"{prefix}: internal error: {type(exc).__name__}: {one_line(exc, 300)} "
              "(a bug in vo2dr; rerun with --debug for the traceback)", file=sys.stderr)
        return ExitCode.INTERNAL


if __name__ == "__main__":
    sys.exit(main())
