"""`finsentry broker`: the embedded Tansu broker in the foreground, for local runs and demos."""

from __future__ import annotations

import argparse
import signal
import sys

from streams import broker
from streams.usage import UsageError


def port_arg(lowest: int) -> argparse.FileType:
    def parse(text: str) -> int:
        if not text.strip().isdigit() or not lowest <= int(text) <= 65535:
            raise argparse.ArgumentTypeError(f"{text!r} is not a port number {lowest}-65535")
        return int(text)

    return parse  # type: ignore[return-value]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("broker", help="run the embedded Kafka-compatible broker (Tansu) on loopback")
    p.add_argument("--port", type=port_arg(0), default=9092, help="port on 127.0.0.1 (default 9092; 0 picks a free one)")
    p.set_defaults(handler=run)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    # SIGTERM stops like Ctrl-C, from before Tansu starts: Tansu runs in its own session, so a default
    # SIGTERM arriving between its start and this handler would leave it running with nobody to stop it.
    # SIGINT too, explicitly: started with `&` from a script, Python inherits SIGINT ignored and
    # installs no KeyboardInterrupt handler, so Ctrl-C (or `kill -INT`) did nothing.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        running = broker.start(args.port or None)
    except broker.BrokerError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        return 0
    try:  # from the announcement on: a Ctrl-C right after it must still stop Tansu, in its own session
        print(f"embedded broker on {running.url} (memory only; Ctrl-C stops it)", file=sys.stderr, flush=True)
        return running.process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        running.stop()
