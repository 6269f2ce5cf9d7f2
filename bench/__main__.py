"""``python -m bench`` runs every benchmark in turn: the HTTP stack, then the API.

``--quick`` is passed to the API benchmark and shortens the HTTP stack's
cells to one second, for a smoke run of the whole suite.
"""

from __future__ import annotations

import argparse

from bench import api, http_stack


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke runs of everything")
    args = parser.parse_args(argv)
    print("## bench.http_stack\n", flush=True)
    http_stack.main(["--seconds", "1"] if args.quick else [])
    print("\n## bench.api\n", flush=True)
    api.main(["--quick"] if args.quick else [])


if __name__ == "__main__":
    main()
