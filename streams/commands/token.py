"""`finsentry token hash`: the roster line for a bearer token, so tokens are never stored in the file.

Reads one token from stdin (so it stays out of shell history and `ps`), refuses one shorter than
scheduler/tokens.py MIN_LENGTH, and prints `scrypt$N$r$p$SALT$HASH` for `token_hash:`.

    python -c 'import secrets; print(secrets.token_urlsafe(32))' | tee alice.token | finsentry token hash
"""

from __future__ import annotations

import argparse
import sys

from scheduler.tokens import hash_token, short_token
from streams.usage import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("token", help="bearer tokens for the roster (analysts and operators)")
    actions = p.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    hashed = actions.add_parser("hash", help="read a token on stdin, print its salted scrypt hash for token_hash:")
    hashed.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    lines = sys.stdin.read().splitlines()
    token = lines[0].strip() if lines else ""
    if len(lines) > 1 and any(line.strip() for line in lines[1:]):
        raise UsageError("token hash: stdin holds more than one line; give one token")
    problem = short_token(token)
    if problem:
        raise UsageError(f"token hash: {problem}; make one with "
                         "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
    print(hash_token(token))
    return 0
