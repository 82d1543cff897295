"""`optsearch inspect RUN_DIR report [-o FILE.html] [--top N] [--json]`: one static HTML page.

Gathers what the other views show -- stats, the progress plot, the best program with its
lineage and its simplification, the top programs, funnel results -- and renders it with
`search.report` into a single file (default RUN_DIR/report.html) that needs no server.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import time

from optsearch.cli.errors import UserError
from optsearch.cli.inspect_list import Recognizer, top_rows
from optsearch.cli.inspect_plot import save_progress_plot
from optsearch.cli.inspect_show import candidate_info
from optsearch.cli.lineage import ancestry_graph, draw_lineage
from optsearch.cli.report import render_report
from optsearch.primitives.parser import parse
from optsearch.primitives.printer import format_program
from optsearch.search.distill.simplify import simplify
from optsearch.search.stats import run_stats
from optsearch.search.store import RunStore


def add_parser(views) -> None:
    p = views.add_parser("report", help="one static HTML page: stats, plots, top programs")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="HTML file to write (default: RUN_DIR/report.html)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="programs in the table")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="print a summary of what was written as one JSON object")
    p.set_defaults(view_func=run)


def png_bytes(draw) -> bytes:
    """Run `draw(file)` against an in-memory file: the page embeds the PNG, no side files."""
    buffer = io.BytesIO()
    draw(buffer)
    return buffer.getvalue()


def funnel_rows(store: RunStore) -> list[dict]:
    """Stored funnel results, or [] when the funnel never ran."""
    return [{k: row[k] for k in ("candidate_id", "stage", "suite", "aggregate", "stderr",
                                 "passed")} for row in store.funnel_table()]


def simplification(program_text: str) -> dict | None:
    """simplify(best, measure=None) -- `optsearch simplify --no-eval`: rewrite rules only, no
    training -- as a dict; the error text if it fails (the report is still worth having)."""
    try:
        result = simplify(parse(program_text), measure=None)
    except Exception as exc:  # noqa: BLE001 -- shown in the page instead of losing the report
        return {"error": f"{type(exc).__name__}: {exc}"}
    rec = result.recognition
    return {"program": format_program(result.program),
            "recognized": rec.name if rec else "n/a",
            "hyperparameters": dict(rec.hyperparameters) if rec else {},
            "trace": [dataclasses.asdict(step) for step in result.trace]}


def gather(store: RunStore, top: int = 10) -> dict:
    stats = run_stats(store)
    recognizer = Recognizer()
    best = None if stats["best_id"] is None else candidate_info(store, stats["best_id"],
                                                                recognizer)
    data = {"run_dir": store.run_dir, "generated_at": time.time(), "stats": stats,
            "best": best, "top": top_rows(store, top, recognizer=recognizer),
            "funnel": funnel_rows(store), "simplification": None, "lineage_png": None,
            "progress_png": png_bytes(lambda f: save_progress_plot(store, f))}
    if best is not None:
        data["simplification"] = simplification(best["program"])
        graph = ancestry_graph(store, [best["id"]])
        data["lineage_png"] = png_bytes(lambda f: draw_lineage(graph, f, "png"))
    try:
        with open(store.config_path, encoding="utf-8") as fh:
            data["config"] = fh.read()
    except OSError:
        data["config"] = None
    return data


def run(store: RunStore, args) -> int:
    path = args.output or os.path.join(store.run_dir, "report.html")
    data = gather(store, args.top)
    page = render_report(data)
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(page)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror})") from None
    if args.json:
        simp = data["simplification"]
        print(json.dumps({"output": path, "bytes": len(page.encode()),
                          "best_id": data["stats"]["best_id"],
                          "top_ids": [r["id"] for r in data["top"]],
                          "funnel_rows": len(data["funnel"]),
                          "simplified": None if simp is None else simp.get("program")},
                         indent=2))
    else:
        print(f"wrote {path}")
    return 0
