"""The `musegen` command. Each sub-command lives in `bridges/commands/<name>.py` and exposes
`register(subparsers)`; the module is imported lazily so `musegen --help` stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys

from musegen.errors import MusegenError

# modules under bridges.commands (one file per concern); each registers its sub-commands
COMMAND_MODULES: tuple[str, ...] = ("demo", "corpus", "train", "generate", "evaluate", "eval", "serve",
                                     "session", "midi", "repl", "lyrics", "lyrics_model", "client", "daw")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, unless the help already says it or there is
    none to show (None, False: the help text says what happens then)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text.lower():
            return text
        return super()._get_help_string(action) or text


class Parser(argparse.ArgumentParser):
    """`musegen` and every sub-command parser: help with defaults (see `HelpFormatter`)."""

    def __init__(self, *args: object, **kw: object) -> None:
        kw.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kw)  # type: ignore[arg-type]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="musegen", description="musegen: a local co-writer for musicians.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
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
    except OSError as e:  # the machine said no: a full disk, a read-only or missing folder
        where = f"{e.filename}: " if e.filename else ""
        print(f"musegen {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"musegen {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
