"""One module per ``vo2dr`` subcommand: ``add_parser(subparsers)`` and ``run(args) -> int``."""
