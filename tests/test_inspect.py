"""`optsearch inspect RUN_DIR list|show|lineage|plot|report` on a tiny fake-backend run."""

import base64
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import networkx as nx
import pytest
from support import small_config_toml

from optsearch.cli.lineage import ancestry, ancestry_graph
from optsearch.cli.main import main
from optsearch.evaluator.fitness import Fitness, TaskFitness
from optsearch.primitives.liveness import live_program
from optsearch.primitives.parser import parse
from optsearch.primitives.printer import format_program
from optsearch.search.store import RunStore

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))),
                None)
# scripts/test.sh installs Debian's chromium when it runs as root; conftest.py repeats this
# reason as one visible line at the end of a run in which the check was skipped.
BROWSER_SKIPPED = "browser check did not run: no Chromium (Debian: apt-get install chromium)"
CONFIG = small_config_toml(budget=40, seed=11)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished fake-backend run; the best candidate gets real per-task results and the
    run two funnel rows (the fake backend stores neither), so every section has data."""
    root = tmp_path_factory.mktemp("inspect")
    config = root / "small.toml"
    config.write_text(CONFIG)
    run = str(root / "run")
    assert main(["search", "--config", str(config), "--out", run, "--quiet"]) == 0
    store = RunStore.open(run)
    best = store.best_candidate()
    task = TaskFitness(0.25, best["aggregate"], (0.2, 0.3), (1.1, 0.9), (0.3, 0.3), True, "ok",
                       10, 0.1)
    fitness = Fitness("ok", best["aggregate"], {"digits_mlp@0": task}, seeds=(0, 1))
    store.update_candidate(best["id"], fitness_json=json.dumps(fitness.to_dict()))
    for stage, passed in ((1, True), (2, False)):
        store.record_funnel_result(best["id"], stage, f"fake@{10 ** stage}", f"v{stage}", 1.2,
                                   0.01, passed, "{}")
    store.close()
    return run


def inspect(capsys, run_dir, *argv):
    code = main(["inspect", run_dir, *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def inspect_json(capsys, run_dir, *argv):
    code, out, _ = inspect(capsys, run_dir, *argv, "--json")
    assert code == 0
    return json.loads(out)


def best_id(capsys, run_dir):
    return inspect_json(capsys, run_dir, "stats")["best_id"]


def test_list_ranks_distinct_programs_by_fitness_with_the_documented_columns(run_dir, capsys):
    rows = inspect_json(capsys, run_dir, "list", "--top", "5")["candidates"]
    assert 1 <= len(rows) <= 5
    fitness = [r["fitness"] for r in rows]
    assert fitness == sorted(fitness, reverse=True), "best first"
    assert rows[0]["id"] == best_id(capsys, run_dir)
    assert len({r["structural_hash"] for r in rows}) == len(rows), "one row per program"
    for r in rows:
        program = parse(r["program"])
        assert r["length"] == len(program.statements)
        assert r["live_statements"] == len(live_program(program).statements)
        assert isinstance(r["recognized"], str) and r["recognized"]
    every = inspect_json(capsys, run_dir, "list", "--top", "1000", "--all")["candidates"]
    distinct = inspect_json(capsys, run_dir, "list", "--top", "1000")["candidates"]
    assert len(every) >= len(distinct), "--all keeps repeats of a program"
    code, out, _ = inspect(capsys, run_dir, "list", "--top", "3")
    header, *lines = out.splitlines()
    assert code == 0 and header.split()[:4] == ["id", "fitness", "length", "live"]
    assert "name" in header and len(lines) == min(3, len(distinct))


def test_show_gives_the_live_program_per_seed_fitness_and_ancestry_from_the_initial_program(
        run_dir, capsys):
    cid = best_id(capsys, run_dir)
    info = inspect_json(capsys, run_dir, "show", cid)
    assert info["live_program"] == format_program(live_program(parse(info["program"])))
    chain = info["ancestry"]
    assert chain[0]["mutation"] == "init" and chain[0]["parent_id"] is None
    assert chain[-1]["id"] == cid
    assert [c["parent_id"] for c in chain[1:]] == [c["id"] for c in chain[:-1]]
    assert info["tasks"]["digits_mlp@0"]["per_seed"] == [0.2, 0.3]
    code, out, _ = inspect(capsys, run_dir, "show", cid)
    assert code == 0
    assert "live program:" in out and info["live_program"].strip() in out
    assert "seed 1: metric 0.3" in out and "initial program" in out


def test_lineage_graph_is_the_union_of_the_ancestries_and_renders_png_and_svg(
        run_dir, capsys, tmp_path):
    ids = [r["id"] for r in inspect_json(capsys, run_dir, "list", "--top", "3")["candidates"]]
    store = RunStore.open(run_dir, readonly=True)
    try:
        graph = ancestry_graph(store, ids)
        chains = {cid: [row["id"] for row in ancestry(store, cid)] for cid in ids}
    finally:
        store.close()
    assert set(graph.nodes) == set().union(*chains.values())
    assert nx.is_branching(graph), "a forest: each candidate has one parent"
    for chain in chains.values():
        assert all(graph.has_edge(a, b) for a, b in itertools.pairwise(chain))
        assert graph.nodes[chain[-1]]["target"]
    png, svg = tmp_path / "l.png", tmp_path / "l.svg"
    data = inspect_json(capsys, run_dir, "lineage", *ids, "-o", png)
    assert {n["id"] for n in data["nodes"]} == set(graph.nodes)
    assert png.read_bytes().startswith(PNG_MAGIC)
    code, out, _ = inspect(capsys, run_dir, "lineage", ids[0], "-o", svg)
    assert code == 0 and "mutation" in out
    assert ET.parse(svg).getroot().tag.endswith("svg")


def test_plot_writes_a_png_of_best_median_and_hit_rate_per_evaluation(run_dir, capsys, tmp_path):
    path = tmp_path / "progress.png"
    series = inspect_json(capsys, run_dir, "plot", "-o", path)
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert series["evaluations"][-1] == inspect_json(capsys, run_dir, "stats")["evaluated"]
    assert series["best"] == sorted(series["best"]), "best so far never drops"
    assert all(0 <= h <= 1 for h in series["hit_rate"] + series["cumulative_hit_rate"])
    code, _, _ = inspect(capsys, run_dir, "plot")
    assert code == 0 and os.path.exists(os.path.join(run_dir, "progress.png"))


class Resources(HTMLParser):
    """Every URL-valued attribute and every tag, to check the page needs nothing else."""

    def __init__(self):
        super().__init__()
        self.urls, self.tags = [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href", "data") and v]


def test_report_is_one_self_contained_html_file(run_dir, capsys, tmp_path):
    out_dir = tmp_path / "report"
    out_dir.mkdir()
    summary = inspect_json(capsys, run_dir, "report", "-o", out_dir / "r.html")
    assert os.listdir(out_dir) == ["r.html"], "no side files"
    page = (out_dir / "r.html").read_text()
    parser = Resources()
    parser.feed(page)
    images = [u for u in parser.urls if u.startswith("data:image/png;base64,")]
    assert len(images) >= 2, "progress plot and lineage embedded"
    assert images == parser.urls, "no external resource"
    assert "http://" not in page and "https://" not in page
    assert not parser.tags & {"script", "link", "iframe"}
    assert summary["funnel_rows"] == 2 and "fake@100" in page
    assert "Derivation" in page or "No rule applied" in page
    assert f"#{summary['top_ids'][-1]}" in page
    assert "digits_mlp@0" in page, "per-task results of the best program"


def screenshot(page, png, width=1280, height=5000):
    """Headless Chromium draws the page from file:// (no server, no network); its pixels."""
    np = pytest.importorskip("numpy")
    image = pytest.importorskip("PIL.Image")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={png.parent / 'chromium-profile'}",
             f"--screenshot={png}", f"--window-size={width},{height}"]
    done = subprocess.run([CHROMIUM, *flags, page.as_uri()], capture_output=True, text=True,
                          timeout=180, check=False)
    assert png.exists(), done.stderr[-2000:]
    pixels = np.asarray(image.open(png).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (height, width)
    return pixels


def page_problems(pixels, width=1280) -> list[str]:
    """What a reader would miss on the screenshot: the embedded PNGs' own colours (the page's
    CSS has none of them), text, the page's length, and at a laptop's width nothing running
    past the centred 1100-pixel column into the right margin."""
    np = pytest.importorskip("numpy")

    def count(rgb, tol=12) -> int:
        return int((np.abs(pixels - np.array(rgb)).max(axis=-1) <= tol).sum())

    problems = []
    if count((31, 119, 180)) <= 100:
        problems.append("progress plot (median line) not drawn")
    if count((44, 160, 44)) <= 100:
        problems.append("progress plot (hit-rate line) not drawn")
    if count((253, 208, 162)) <= 100:
        problems.append("lineage picture (initial node) not drawn")
    if count((34, 34, 34), tol=60) <= 20_000:
        problems.append("little or no text")
    content = np.nonzero((pixels < 250).any(axis=(1, 2)))[0]
    if content.max() - content.min() <= 1500:
        problems.append("the page is drawn short")
    margin = (width - 1100 - 2 * 16) // 2  # body: max-width 1100px, padding 16px, centred
    if not (pixels[:, width - margin + 8:] >= 250).all():
        problems.append("content spills into the right margin")
    return problems


def break_page(html: str) -> str:
    """The report with the progress plot gone, the lineage picture blank (an empty PNG of
    the same kind) and a line too long for the page."""
    progress = re.search(r'<img alt="fitness and cache hit rate[^>]*>', html)
    lineage = re.search(r'<img alt="lineage" src="data:image/png;base64,[^"]*"', html)
    assert progress and lineage, "the report's images moved; update break_page"
    blank = base64.b64encode(_blank_png()).decode()
    html = html.replace(progress.group(0), "")
    html = html.replace(lineage.group(0), f'<img alt="lineage" src="data:image/png;base64,{blank}"')
    return html.replace("<h2>Progress</h2>", "<h2>Progress</h2><p>" + "x" * 400 + "</p>")


def _blank_png() -> bytes:
    image = pytest.importorskip("PIL.Image")
    buffer = io.BytesIO()
    image.new("RGB", (400, 300), "white").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.skipif(CHROMIUM is None, reason=BROWSER_SKIPPED)
def test_report_renders_in_a_browser_with_its_plots_and_nothing_off_the_page(
        run_dir, capsys, tmp_path):
    """What a reader sees of the report, in a real browser: no problem. And the check can
    see a broken page: missing plots, an empty lineage, text off the page."""
    page, png = tmp_path / "r.html", tmp_path / "r.png"
    inspect_json(capsys, run_dir, "report", "-o", page)
    assert page_problems(screenshot(page, png)) == []
    broken, broken_png = tmp_path / "broken.html", tmp_path / "broken.png"
    broken.write_text(break_page(page.read_text()))
    assert set(page_problems(screenshot(broken, broken_png))) == {
        "progress plot (median line) not drawn", "progress plot (hit-rate line) not drawn",
        "lineage picture (initial node) not drawn", "content spills into the right margin"}


@pytest.mark.parametrize("argv, message", [
    (["{missing}", "list"], "is not a run directory"),
    (["{plain_dir}", "report"], "is not a run directory"),
    (["{not_db}", "list"], "cannot read the run database"),
    (["{run}", "show", "999999"], "no candidate 999999"),
    (["{run}", "lineage", "999999"], "no candidate 999999"),
    (["{run}", "lineage", "0", "-o", "{plain_dir}/x.gif"], "must be .png or .svg"),
    (["{run}", "plot", "-o", "{missing}/p.png"], "cannot write"),
])
def test_bad_input_is_one_error_line_with_status_2(run_dir, capsys, tmp_path, argv, message):
    not_db = tmp_path / "not_db"
    not_db.mkdir()
    (not_db / "run.sqlite").write_text("not a database\n")
    names = {"missing": tmp_path / "missing", "plain_dir": tmp_path, "not_db": not_db,
             "run": run_dir}
    code = main(["inspect", *(a.format(**names) for a in argv)])
    _out, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert "Traceback" not in err

