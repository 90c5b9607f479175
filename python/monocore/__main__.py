"""The ``monocore`` command's Python twin, for a machine with only the package:

- ``python -m monocore doctor [--json]``: can this host boot microVMs, and
  how to fix it (the same report, and exit code, as ``monocore doctor``);
- ``python -m monocore run [--ram MIB] [--root DIR | --image REF] -- CMD
  [ARG...]``: runs one command in a new sandbox, prints its output and exits
  with its code (125 for monocore's own errors, as ``monocore run``).
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import MonocoreError, Sandbox
from ._monocore import doctor


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monocore")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("doctor", help="can this host boot microVMs?")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    run = commands.add_parser("run", help="run a command in a new sandbox")
    run.add_argument("--ram", type=int, default=256, help="guest memory in MiB")
    run.add_argument("--vcpus", type=int, default=1)
    run.add_argument("--root", default=None, help="the guest's root directory")
    run.add_argument("--image", default=None, help="an OCI image reference")
    run.add_argument("--timeout", type=float, default=None, help="seconds")
    run.add_argument("cmd", nargs="+", help="the command (after --)")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        can_boot, table, json = doctor()
        print(json if args.json else "monocore doctor\n" + table.rstrip())
        return 0 if can_boot else 1
    try:
        with Sandbox(image=args.image, root=args.root, ram=args.ram, vcpus=args.vcpus) as sb:
            result = sb.run(
                args.cmd,
                timeout=args.timeout,
                on_stdout=lambda s: print(s, end="", flush=True),
                on_stderr=lambda s: print(s, end="", file=sys.stderr, flush=True),
            )
    except MonocoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 125
    return result.exit_code if result.exit_code >= 0 else 128 - result.exit_code


if __name__ == "__main__":
    sys.exit(main())
