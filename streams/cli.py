"""`finsentry`: one console script for the worker, the embedded broker, producers and the model.

`finsentry worker ...` hands its arguments to Faust's own CLI, with the usual spellings of log
levels (`warning`, `critical`) translated to Faust's. Every subcommand ends a usage or configuration
error with exit status 2 and one line, `finsentry: error: ...` (streams/usage.py).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import logging
import os
import sys
from collections.abc import Sequence

from models.data import DataError
from models.runtime import ModelError
from streams.settings import SettingsError
from streams.usage import EXIT_USAGE, PREFIX, UsageError

# Subcommand modules; each exposes register(subparsers) and sets `handler` on its parser.
COMMANDS = (
    "streams.commands.broker",
    "streams.commands.model",
    "streams.sources.produce",
    "streams.sources.generate",
    "streams.sources.scrape",
    "streams.demo",
    "streams.commands.receiver",
    "streams.commands.feedback",
    "streams.commands.tail",
    "streams.commands.token",
)


class CliError(UsageError):
    """A user-facing error: printed as one line, exit status 2."""


# Faust's -l/--loglevel takes crit, error, warn, info, debug; people also write these.
LOG_LEVEL_ALIASES = {"warning": "warn", "critical": "crit", "fatal": "crit", "err": "error", "notice": "info",
                     "trace": "debug"}


class Parser(argparse.ArgumentParser):
    """argparse with the one-line error convention: no usage block, exit status 2 via UsageError."""

    def error(self, message: str) -> None:  # type: ignore[override]
        where = self.prog.removeprefix("finsentry").strip()
        raise UsageError(f"{where + ': ' if where else ''}{message} (see {self.prog} --help)")


def version() -> str:
    try:
        return importlib.metadata.version("finsentry")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def parser() -> argparse.ArgumentParser:
    root = Parser(prog="finsentry", description="Streaming monitor for financial news.")
    root.add_argument("--version", action="version", version=f"finsentry {version()}")
    sub = root.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.add_parser("worker", help="run a Faust worker (Faust's CLI: finsentry worker -l info --web-port 6066)")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return root


def worker_args(argv: Sequence[str]) -> list[str]:
    """The worker's arguments with log levels spelled as Faust wants them (`warning` -> `warn`)."""
    out: list[str] = []
    take_level = False
    for arg in argv:
        if take_level:
            arg = LOG_LEVEL_ALIASES.get(arg.lower(), arg.lower())
            take_level = False
        elif arg in ("-l", "--loglevel"):
            take_level = True
        elif arg.startswith("--loglevel="):
            level = arg.partition("=")[2]
            arg = "--loglevel=" + LOG_LEVEL_ALIASES.get(level.lower(), level.lower())
        elif arg.startswith("-l") and len(arg) > 2 and not arg.startswith("--"):
            arg = "-l" + LOG_LEVEL_ALIASES.get(arg[2:].lower(), arg[2:].lower())
        out.append(arg)
    return out


def check_worker_args(app: object, argv: Sequence[str]) -> None:
    """Parse the worker's arguments with Faust's own CLI, without running it: a bad option is a usage
    error (one line, exit 2) at once, not after waiting for a broker or in click's usage block."""
    import warnings

    import click
    from faust.cli.faust import cli

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # click 8.2 renames protected_args
            with cli.make_context("finsentry", ["worker", *argv], obj=app) as ctx:
                name, command, rest = cli.resolve_command(ctx, [*ctx.protected_args, *ctx.args])
                command.make_context(name, rest, parent=ctx).close()
    except click.ClickException as exc:
        also = ""  # click lists Faust's spellings only; the ones worker_args turns into them are taken too
        if isinstance(exc, click.BadParameter) and exc.param is not None and exc.param.name == "loglevel":
            also = f"; finsentry also takes {', '.join(LOG_LEVEL_ALIASES)}"
        raise CliError(f"worker: {exc.format_message()}{also} (see finsentry worker --help)") from None


def run_worker(argv: Sequence[str]) -> int:
    from streams import worker  # a bad FINSENTRY_* setting ends here: one line, exit 2 (streams/app.py)
    from streams.failures import FAILURES
    from streams.loaded_model import model_call_seconds

    app = worker.app
    argv = worker_args(argv)
    if not worker.wants_help(argv):
        check_worker_args(app, argv)
        worker.start_up()
    sys.argv = ["finsentry", "worker", *argv]
    try:
        app.main()
    except SystemExit:
        if FAILURES.any:  # an agent crashed: the supervisor must see a failure and restart the worker
            print(f"finsentry worker: stopped after agent failure: {FAILURES.crashed}", file=sys.stderr)
            if model_call_seconds():  # a hung model thread: the interpreter would wait for it at exit
                logging.shutdown()
                sys.stderr.flush()
                os._exit(1)
            return 1
        raise
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if sys.stderr is None:  # started with stderr closed (2>&-): messages go nowhere, and nothing else breaks
        # __stderr__ too: Faust's worker puts sys.__stderr__ back as sys.stderr when it stops
        sys.stderr = sys.__stderr__ = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - process-long
    try:
        if argv[:1] == ["worker"]:
            return run_worker(argv[1:])
        args = parser().parse_args(argv)
        if not getattr(args, "handler", None):
            parser().print_help(sys.stderr)
            return EXIT_USAGE
        return int(args.handler(args) or 0)
    except (UsageError, SettingsError, DataError, ModelError) as exc:
        print(PREFIX + " ".join(str(exc).split()), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
