"""`finsentry`: one console script for the worker, the embedded broker, producers and the model.

`finsentry worker ...` hands its arguments to Faust's own CLI, with the usual spellings of log
levels (`warning`, `critical`) translated to Faust's. Every subcommand ends a usage or configuration
error with exit status 2 and one line, `finsentry: error: ...` (streams/usage.py).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import socket
import sys
import time
from collections.abc import Callable, Sequence

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


def reachable(servers: Sequence[str], timeout: float = 2.0) -> bool:
    """Whether any bootstrap server accepts a TCP connection (enough to know Kafka is up)."""
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return True
        except (OSError, ValueError):
            continue
    return False


def wait_for_broker(servers: Sequence[str], patience: float, sleep: Callable[[float], None] = time.sleep,
                    clock: Callable[[], float] = time.monotonic) -> None:
    """Block until a bootstrap server answers, logging each retry; CliError after `patience` seconds."""
    started, delay, attempt = clock(), 1.0, 1
    while not reachable(servers):
        waited = clock() - started
        if waited >= patience:
            raise CliError(f"no Kafka broker at {','.join(servers)} after {waited:.0f}s; start it or point "
                           "FINSENTRY_BROKER at one (FINSENTRY_BROKER_WAIT_SECONDS sets how long to wait)")
        print(f"finsentry worker: broker {','.join(servers)} not reachable yet (attempt {attempt}); "
              f"retrying in {delay:.0f}s", file=sys.stderr, flush=True)
        sleep(delay)
        delay, attempt = min(delay * 2, 15.0), attempt + 1


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


def wants_help(argv: Sequence[str]) -> bool:
    """Whether the worker was asked only for help or its version: answered at once, without a broker."""
    return any(arg in ("-h", "--help", "--version") for arg in argv)


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
        raise CliError(f"worker: {exc.format_message()} (see finsentry worker --help)") from None


def run_worker(argv: Sequence[str]) -> int:
    try:
        from streams import worker
    except SettingsError as exc:
        raise CliError(str(exc)) from None
    from streams.failures import FAILURES

    app, settings = worker.app, worker.settings
    argv = worker_args(argv)
    if not wants_help(argv):
        check_worker_args(app, argv)
        worker.configure()
        wait_for_broker(settings.bootstrap_servers, settings.broker_wait_seconds)
        worker.prepare(app, settings)
    sys.argv = ["finsentry", "worker", *argv]
    try:
        app.main()
    except SystemExit:
        if FAILURES.any:  # an agent crashed: the supervisor must see a failure and restart the worker
            print(f"finsentry worker: stopped after agent failure: {FAILURES.crashed}", file=sys.stderr)
            return 1
        raise
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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
