"""The `musegen` command. Each sub-command lives in `bridges/commands/<name>.py` and exposes
`register(subparsers)`; the module is imported lazily so `musegen --help` stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys

from musegen.errors import MusegenError

# modules under bridges.commands (one file per concern); each registers its sub-commands
COMMAND_MODULES: tuple[str, ...] = ("demo", "corpus", "train", "generate", "evaluate", "eval", "serve",
                                     "session", "midi", "repl", "lyrics", "lyrics_model")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musegen", description="musegen: a local co-writer for musicians."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(f"bridges.commands.{module}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        import musegen

        print(f"musegen {musegen.__version__}")
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MusegenError as e:
        print(f"musegen {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"musegen {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
