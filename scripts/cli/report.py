"""One self-contained HTML page about a run: stats, plots, top programs, funnel, simplification.

Rendering only: `render_report(data)` turns the dict that `scripts/cli/inspect_report.py`
gathers into a page with inline CSS and the plots as base64 PNG, so it can be mailed or
opened from a cluster's scratch disk with no server and no network. Every value from the
run is escaped: program text and mutation details are data, never markup.
"""

from __future__ import annotations

import base64
import difflib
import html
import time

from optsearch.cli.lineage import short_detail

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto;
       max-width: 1100px; padding: 0 16px; color: #222; line-height: 1.4; }
h1 { font-size: 22px; margin-bottom: 2px; } h2 { font-size: 17px; margin-top: 28px;
     border-bottom: 1px solid #ddd; padding-bottom: 3px; } h3 { font-size: 14px; }
.sub { color: #666; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: 8px; font-size: 12px;
      overflow-x: auto; margin: 4px 0; }
.cols { display: flex; gap: 16px; flex-wrap: wrap; } .cols > div { flex: 1; min-width: 320px; }
img { max-width: 100%; border: 1px solid #eee; }
.lineage { max-height: 1000px; overflow-y: auto; overflow-x: hidden; }
.na { color: #999; } .pass { color: #2a7d2a; } .fail { color: #b22; }
details summary { cursor: pointer; color: #245; }
pre.diff, pre.cell { margin: 0; padding: 2px 4px; background: none; border: none; }
td details { display: inline-block; margin-right: 12px; } td details[open] { display: block; }
"""


def esc(value) -> str:
    return html.escape("" if value is None else str(value))


def number(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def png_img(png: bytes | None, alt: str) -> str:
    if not png:
        return f'<p class="na">({esc(alt)}: not available)</p>'
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def table(header: list[str], rows: list[list[str]], numeric=()) -> str:
    """Cells are already HTML (callers escape); `numeric` columns are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{c}</td>' if k in numeric else f"<td>{c}</td>"
        for k, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def stats_section(stats: dict) -> str:
    rate = f"{stats['cache_hit_rate']:.1%}"
    rows = [["proposed", esc(stats["proposed"])], ["invalid", esc(stats["invalid"])],
            ["unchanged", esc(stats["unchanged"])], ["cache hits", esc(stats["cache_hits"])],
            ["evaluated", f"{esc(stats['evaluated'])} of {esc(stats['budget'])}"],
            ["failed", esc(stats["failed"])], ["in flight", esc(stats["in_flight"])],
            ["restarts", esc(stats["restarts"])],
            ["best fitness", (f"{number(stats['best_fitness'])} (candidate "
                             f"{esc(stats['best_id'])})")],
            ["cache hit rate", rate],
            ["dead statements", f"{stats['dead_fraction']:.1%} of the population's"]]
    return "<h2>Statistics</h2>" + table(["counter", "value"], rows, numeric=(1,))


def tasks_table(best: dict) -> str:
    if not best["tasks"]:
        return '<p class="na">No per-task results stored for this candidate.</p>'
    seeds = best["seeds"] or list(range(len(next(iter(best["tasks"].values()))["per_seed"])))
    rows = []
    for name, task in best["tasks"].items():
        per_seed = " ".join(number(m, 4) for m in task.get("per_seed", []))
        scores = " ".join(number(s, 3) for s in task.get("seed_scores", []))
        rows.append([esc(name), number(task.get("score")), number(task.get("metric")),
                     esc(per_seed), esc(scores), esc(task.get("status", ""))])
    header = ["task", "score", "metric", f"metric per seed {tuple(seeds)}", "score per seed",
              "status"]
    return table(header, rows, numeric=(1, 2))


def best_section(best: dict, lineage_png: bytes | None) -> str:
    ancestry = [[f"#{a['id']}", number(a["fitness"]), esc(short_detail(a["detail"]))]
                for a in best["ancestry"]]
    left = (f"<h3>Live program</h3><pre>{esc(best['live_program'])}</pre>"
            f"<h3>Raw program (as evolved, dead statements included)</h3>"
            f"<pre>{esc(best['program'])}</pre><h3>Fitness per task and seed</h3>"
            f"{tasks_table(best)}<h3>Ancestry ({plural(len(ancestry) - 1, 'mutation')})</h3>"
            + table(["candidate", "fitness", "mutation"], ancestry, numeric=(1,)))
    right = f'<h3>Lineage</h3><div class="lineage">{png_img(lineage_png, "lineage")}</div>'
    head = (f"<h2>Best program: candidate {esc(best['id'])}, fitness {number(best['fitness'])}"
            f", recognised: {esc(best['recognized'])}</h2>")
    return head + f'<div class="cols"><div>{left}</div><div>{right}</div></div>'


def step_note(note: str) -> str:
    """The step's own explanation: search.simplify appends the changed lines to the note
    ("... | -old; +new"), which the page shows as a diff instead."""
    return " | ".join(p for p in note.split(" | ") if not p.startswith(("-", "+")))


def step_diff(before: str, after: str) -> str:
    """Removed and added lines of one step (no context, no hunk headers)."""
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
    return "\n".join(line for line in lines
                     if not line.startswith(("---", "+++", "@@")))


def simplification_section(simp: dict | None) -> str:
    head = "<h2>Simplification of the best program</h2>"
    if simp is None:
        return head + '<p class="na">n/a (search.simplify is not available)</p>'
    if "error" in simp:
        return head + f'<p class="fail">simplification failed: {esc(simp["error"])}</p>'
    hyper = ", ".join(f"{k}={v:g}" for k, v in simp["hyperparameters"].items())
    out = [head, (f"<p>Recognised as <b>{esc(simp['recognized'])}</b>"
                 f"{esc(f' ({hyper})') if hyper else ''}; no fitness measure "
                 "(constants rounded to 3 significant digits).</p>"),
           f"<pre>{esc(simp['program'])}</pre>", "<h3>Derivation</h3>"]
    rows = []
    notes = [step_note(step["note"]) for step in simp["trace"]]
    for k, (step, note) in enumerate(zip(simp["trace"], notes), 1):
        kind = "exact" if step["exact"] else "approximate"
        after = f"<details><summary>after</summary><pre>{esc(step['after'])}</pre></details>"
        diff = f'<pre class="diff">{esc(step_diff(step["before"], step["after"]))}</pre>'
        rows.append([str(k), esc(step["rule"]), kind, *([esc(note)] if any(notes) else []),
                     diff, after])
    if rows:  # the note column only when some step has more to say than its diff
        header = ["#", "rule", "kind", *(["note"] if any(notes) else []), "change", "program"]
        out.append(table(header, rows))
    else:
        out.append('<p class="na">No rule applied: the program is already simple.</p>')
    return "".join(out)


def top_section(top: list[dict], best: dict | None) -> str:
    """One row per distinct program. Runners-up are usually a line or two away from the best
    program (shown in full above), so the row shows that difference, the whole live and raw
    programs folded."""
    reference = best["live_program"] if best else None
    rows = []
    for r in top:
        if reference is None:
            change = f'<pre class="cell">{esc(r["live_program"])}</pre>'
        elif r["id"] == best["id"]:
            change = '<div class="na">the best program (above)</div>'
        elif r["live_program"] == reference:
            change = '<div class="na">same live program as the best</div>'
        else:
            change = f'<pre class="diff">{esc(step_diff(reference, r["live_program"]))}</pre>'
        folded = (f"<details><summary>live program</summary><pre>{esc(r['live_program'])}"
                  f"</pre></details><details><summary>raw program</summary>"
                  f"<pre>{esc(r['program'])}</pre></details>")
        rows.append([f"#{r['id']}", number(r["fitness"]), esc(r["length"]),
                     esc(r["live_statements"]), esc(r["seen"]), esc(r["status"]),
                     esc(r["recognized"]), change + folded])
    header = ["id", "fitness", "length", "live", "seen", "status", "recognised",
              "live program: lines that differ from the best's (- best, + this one)"
              if reference else "live program"]
    return (f"<h2>Top {len(top)} distinct programs</h2>"
            + table(header, rows, numeric=(1, 2, 3, 4)))


def funnel_section(funnel: list[dict]) -> str:
    head = "<h2>Funnel selection</h2>"
    if not funnel:
        return head + '<p class="na">No funnel results in this run yet.</p>'
    rows = [[esc(f["stage"]), f"#{esc(f['candidate_id'])}", esc(f["suite"]),
             number(f["aggregate"]), number(f["stderr"]),
             '<span class="pass">passed</span>' if f["passed"]
             else '<span class="fail">stopped</span>'] for f in funnel]
    return head + table(["stage", "candidate", "suite", "fitness", "stderr", "AdamW beaten"],
                        rows, numeric=(3, 4))


def render_report(data: dict) -> str:
    """data: run_dir, stats, best (inspect show's dict or None), top, funnel, simplification,
    progress_png, lineage_png, config (text)."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(data.get("generated_at")))
    parts = [f"<h1>optsearch run {esc(data['run_dir'])}</h1>",
             f'<p class="sub">report written {esc(when)}</p>',
             stats_section(data["stats"]), "<h2>Progress</h2>",
             png_img(data["progress_png"], "fitness and cache hit rate vs evaluations")]
    if data["best"] is not None:
        parts.append(best_section(data["best"], data["lineage_png"]))
        parts.append(simplification_section(data["simplification"]))
    else:
        parts.append('<p class="na">No finished candidate yet.</p>')
    config = ('<p class="na">config.toml is missing.</p>' if data.get("config") is None else
              f"<details><summary>config.toml</summary><pre>{esc(data['config'])}</pre></details>")
    parts += [top_section(data["top"], data["best"]), funnel_section(data["funnel"]),
              f"<h2>Configuration</h2>{config}"]
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>optsearch report: {esc(data['run_dir'])}</title><style>{STYLE}</style>"
            f"</head><body>\n{body}\n</body></html>\n")
