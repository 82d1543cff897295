"""`optsearch inspect RUN_DIR lineage ID [ID ...] [-o FILE.png|.svg] [--json]`: ancestry graph.

Prints the chain of mutations from the initial program to each ID and draws the ancestry
graph (parent -> child, labelled with the mutation; one row per generation). With several
IDs the graph is the tree of their common descent. Default picture: RUN_DIR/lineage-ID.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from optsearch.cli.errors import UserError
from optsearch.cli.lineage import ancestry, ancestry_graph, draw_lineage, graph_dict, short_detail
from optsearch.search.store import RunStore

FORMATS = ("png", "svg")


def add_parser(views) -> None:
    p = views.add_parser("lineage", help="ancestry graph of a candidate, as PNG or SVG")
    p.add_argument("ids", type=int, nargs="+", metavar="ID", help="candidate id(s)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="picture to write, .png or .svg (default: RUN_DIR/lineage-ID.png)")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="print the graph (nodes, edges) as one JSON object")
    p.set_defaults(view_func=run)


def output_path(store: RunStore, args) -> tuple[str, str]:
    path = args.output or os.path.join(store.run_dir, f"lineage-{args.ids[0]}.png")
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt not in FORMATS:
        raise UserError(f"{path}: the picture must be .png or .svg")
    return path, fmt


def chain_lines(store: RunStore, candidate_id: int) -> list[str]:
    chain = ancestry(store, candidate_id)
    n = len(chain) - 1
    lines = [(f"candidate {candidate_id}: {n} mutation{'' if n == 1 else 's'} from #{chain[0]['id']} "
             f"({chain[0]['detail']})")]
    for row in chain[1:]:
        fitness = "-" if row["aggregate"] is None else f"{row['aggregate']:.4f}"
        step = f"#{row['parent_id']} -> #{row['id']}"
        lines.append(f"  {step:<16} {fitness:>8}  {short_detail(row['detail'])}")
    return lines


def run(store: RunStore, args) -> int:
    missing = [i for i in args.ids if store.candidate(i) is None]
    if missing:
        raise UserError(f"{store.run_dir}: no candidate {missing[0]}")
    path, fmt = output_path(store, args)
    graph = ancestry_graph(store, args.ids)
    try:
        draw_lineage(graph, path, fmt)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror})") from None
    if args.json:
        print(json.dumps({"ids": args.ids, "output": path, **graph_dict(graph)}, indent=2))
    else:
        for cid in args.ids:
            print("\n".join(chain_lines(store, cid)))
    print(f"wrote {path}", file=sys.stderr)
    return 0
