"""The `unicorn` command line: a thin layer over the library. Bad input exits with code 2, a service (an LLM
server) that failed for good mid-run with code 1; either way one line on stderr."""

from __future__ import annotations

import argparse
import sqlite3
import sys

from modality_transfer.errors import InputError

from ..errors import ServiceUnavailable
from . import gap, run, text, vlm, world


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unicorn", description="Text-only synthesis of vision-language training data."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    gap.add_commands(commands)
    world.add_commands(commands)
    text.add_commands(commands)
    run.add_commands(commands)
    vlm.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except InputError as e:
        print(f"unicorn: error: {e}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as e:  # a full disk, a read-only folder: still one line, still exit 2
        print(f"unicorn: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except ServiceUnavailable as e:  # not the user's input: exit 1, and the same command resumes
        print(f"unicorn: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("unicorn: interrupted", file=sys.stderr)
        return 130
