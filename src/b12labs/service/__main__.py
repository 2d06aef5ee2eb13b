"""``python -m b12labs.service [--host --port --workers --config --allow-unauthenticated]``:
the same as ``b12labs serve``."""

from __future__ import annotations

import argparse
import sys

from ._cli import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m b12labs.service",
        description="Run the b12labs CDS Hooks 2.0 service.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
