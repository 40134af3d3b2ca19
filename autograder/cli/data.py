"""``rnn-course data verify|fetch``: check or fetch the course data sets."""

from __future__ import annotations

from pathlib import Path


def add_parser(commands) -> None:
    data = commands.add_parser("data", help="check or fetch the course data sets")
    data_commands = data.add_subparsers(title="data commands", metavar="ACTION", required=True)
    verify_command = data_commands.add_parser(
        "verify", help="check every data set's file and checksum"
    )
    verify_command.set_defaults(handler=verify)
    fetch_command = data_commands.add_parser(
        "fetch", help="download missing data sets (or copy them from --data-dir) into a folder"
    )
    fetch_command.add_argument(
        "--to", metavar="DIR", help="target folder (default: the download cache)"
    )
    fetch_command.set_defaults(handler=fetch)


def verify(args) -> int:
    from assignments.cli import verify_data

    return verify_data()


def fetch(args) -> int:
    from assignments.cli import fetch_data

    return fetch_data(Path(args.to) if args.to else None)
