"""The command line's one convention for errors a user can fix.

A usage or configuration error (an argument, a file, a setting, an unreachable broker) ends any
`finsentry` subcommand with exit status 2 and one line on stderr: `finsentry: error: <what>; <fix>`.
Exit status 1 means the command ran but some of its work failed (a feed that could not be read,
nothing classified); 0 means it did everything it was asked.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

EXIT_USAGE = 2
PREFIX = "finsentry: error: "


class UsageError(Exception):
    """A usage or configuration error: printed as one line, exit status 2."""


def config_exit(message: str) -> SystemExit:
    """For code that runs inside the worker, where raising UsageError would not reach the CLI: print the
    one line and return the SystemExit to raise, e.g. `raise config_exit("roster ...: ...")`."""
    print(PREFIX + " ".join(message.split()), file=sys.stderr, flush=True)
    return SystemExit(EXIT_USAGE)


def positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    """An argparse `type`: a finite number above 0 of `kind` (int or float), or argparse's one-line error
    (a batch size of -1 once classified nothing and printed zeros as labels; `nan` passed `<= 0`)."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number greater than 0")
        return value

    return parse
