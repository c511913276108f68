"""`finsentry`: one console script for the worker, the embedded broker, producers and the model.

`finsentry worker ...` hands its arguments to Faust's own CLI unchanged. Every other subcommand
ends a bad argument or configuration with one line naming the problem and the fix.
"""

from __future__ import annotations

import argparse
import importlib
import socket
import sys
import time
from collections.abc import Callable, Sequence

from models.data import DataError
from models.runtime import ModelError
from streams.settings import SettingsError

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
)


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="finsentry", description="Streaming monitor for financial news.")
    sub = root.add_subparsers(dest="command", metavar="COMMAND")
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


def run_worker(argv: Sequence[str]) -> int:
    try:
        from streams import worker
    except SettingsError as exc:
        raise CliError(str(exc)) from None
    from streams.failures import FAILURES

    app, settings = worker.app, worker.settings
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
            parser().print_help()
            return 2
        return int(args.handler(args) or 0)
    except (CliError, SettingsError, DataError, ModelError) as exc:
        print(f"finsentry: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
