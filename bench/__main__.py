"""``python -m bench`` runs every benchmark in turn, each printing its table and writing its JSON.

Order: the HTTP stack, the API (both backends), server-side apply and custom
resources, RBAC, the 1,000-node scale run, then a real node (``pods``: runc,
as root; skipped elsewhere). ``--quick`` shortens every one to a smoke run;
``--only NAME`` (repeatable) picks some.
"""

from __future__ import annotations

import argparse
import importlib

# name → (arguments for a full run, arguments for a quick run)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "http_stack": ([], ["--seconds", "1"]),
    "api": ([], ["--quick"]),
    "apply": ([], ["--quick"]),
    "rbac": ([], ["--seconds", "1"]),
    "scale": ([], ["--quick"]),
    "pods": ([], ["--quick"]),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke runs of everything")
    parser.add_argument(
        "--only", action="append", choices=sorted(BENCHMARKS), help="run only these benchmarks"
    )
    args = parser.parse_args(argv)
    for name, (full, quick) in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        print(f"\n## bench.{name}\n", flush=True)
        module = importlib.import_module(f"bench.{name}")
        module.main(quick if args.quick else full)


if __name__ == "__main__":
    main()
