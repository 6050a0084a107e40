"""`hazmon console passwd`: a password hash for a console user in the daemon config (`console.users`)."""

from __future__ import annotations

import argparse
import getpass
import sys

from hazmon.console import hash_password

__all__ = ["register"]

MIN_LENGTH = 10


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("console", help="the web console (sign-in users)")
    acts = c.add_subparsers(dest="console_command", metavar="ACTION", required=True)
    p = acts.add_parser(
        "passwd", help="print a password hash for console.users[].password_hash (asks for the password)"
    )
    p.add_argument("--stdin", action="store_true", help="read the password from the first line of stdin")
    p.set_defaults(handler=_passwd)


def _passwd(args: argparse.Namespace) -> int:
    if args.stdin:
        pw = sys.stdin.readline().rstrip("\r\n")
    else:
        pw = getpass.getpass("password: ")
        if getpass.getpass("again: ") != pw:
            print("hazmon console passwd: the two passwords differ", file=sys.stderr)
            return 2
    if len(pw) < MIN_LENGTH:
        print(f"hazmon console passwd: a password has at least {MIN_LENGTH} characters", file=sys.stderr)
        return 2
    print(hash_password(pw))
    return 0
