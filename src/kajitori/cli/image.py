"""``kajitori image``: the node's image store from the command line.

``kajitori image load FILE`` loads a docker-save tarball or an OCI archive
(``kubelet/images/archive.py``); ``kajitori image ls`` lists the store as
``crictl images`` does; ``kajitori image rm REF`` forgets a name and
``kajitori image prune`` removes what no name keeps. The store is
``<data-dir>/images``, the one the kubelet of that data dir uses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kajitori.kubelet.images import store

# The image modules are imported when an image command runs, not when any
# ``kajitori`` command starts: ``kajitori up`` should not pay for them.


def add_parser(parser: argparse.ArgumentParser, default_data_dir: Path) -> None:
    """Add the ``image`` subcommand to ``parser``'s subcommands."""
    # argparse allows one subparsers action per parser; reach the one main.py made.
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    image = sub.add_parser("image", help="manage the node's image store")
    image.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir,
        help="the store is <data-dir>/images (default: %(default)s)",
    )
    verbs = image.add_subparsers(dest="image_command", required=True)
    load = verbs.add_parser("load", help="load a docker-save tarball or an OCI archive")
    load.add_argument("file", type=Path)
    load.add_argument("--name", help="repository for OCI entries named only by a tag")
    load.add_argument("--platform", default="linux/amd64", help="platform to pick from an index")
    verbs.add_parser("ls", help="list images")
    remove = verbs.add_parser("rm", help="forget image names (prune removes the content)")
    remove.add_argument("references", nargs="+")
    verbs.add_parser("prune", help="remove images no name refers to")
    for verb in verbs.choices.values():
        verb.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from kajitori.kubelet.images import store

    image_store = store.ImageStore(args.data_dir.expanduser() / "images")
    if args.image_command == "load":
        return _load(image_store, args)
    if args.image_command == "ls":
        _list(image_store)
        return 0
    if args.image_command == "rm":
        return _remove(image_store, args.references)
    if args.image_command == "prune":
        named = {name for record in image_store.list() for name in record.references}
        result = image_store.gc(named)
        print(f"removed {len(result.removed)} images, {_human(result.bytes_freed)} freed")
        return 0
    return 2


def _load(image_store: store.ImageStore, args: argparse.Namespace) -> int:
    from kajitori.kubelet.images import archive, manifest, unpack

    try:
        loaded = archive.load(
            image_store,
            args.file,
            base_name=args.name,
            platform=manifest.Platform.parse(args.platform),
        )
    except (archive.ArchiveError, unpack.UnpackError, manifest.ManifestError) as exc:
        print(f"kajitori: image load: {exc}", file=sys.stderr)
        return 1
    for image in loaded:
        print(f"Loaded image: {image.reference or image.image_id}")
    return 0


def _list(image_store: store.ImageStore) -> None:
    rows = [("IMAGE", "TAG", "IMAGE ID", "SIZE")]
    for record in image_store.list():
        short_id = record.image_id.split(":", 1)[1][:13]
        for name in record.references or ("<none>",):
            repo, tag = _repo_and_tag(name)
            rows.append((repo, tag, short_id, _human(record.size)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print(
            "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _remove(image_store: store.ImageStore, names: list[str]) -> int:
    from kajitori.kubelet.images import reference

    status = 0
    for name in names:
        try:
            key = reference.normalize(name)
        except reference.InvalidReference:
            key = name
        if image_store.remove(key):
            print(f"Deleted: {key}")
        else:
            print(f"kajitori: image rm: no such image {name}", file=sys.stderr)
            status = 1
    return status


def _repo_and_tag(name: str) -> tuple[str, str]:
    from kajitori.kubelet.images import reference

    if name == "<none>":
        return "<none>", "<none>"
    try:
        ref = reference.parse(name)
    except reference.InvalidReference:
        return name, "<none>"
    return ref.name, ref.tag or "<none>"


def _human(size: int) -> str:
    """crictl's sizes: decimal units, three significant digits."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.3g}{unit}"
        value /= 1000
    return f"{size}B"
