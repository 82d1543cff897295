"""Ancestry of candidates: the chain of parents back to an initial program, as a graph.

Every candidate has at most one parent (`parent_id`), so one candidate's ancestry is a path;
the ancestries of several candidates together form a tree rooted at the initial program(s),
which shows where the best programs' lines of descent split. Nodes are candidate ids (with
fitness and mutation attributes); an edge parent -> child carries the mutation that made the
child. Drawing uses matplotlib through networkx, with networkx's multipartite (layered) layout: one
row per generation, so no graphviz is needed.
"""

from __future__ import annotations

import itertools
import re

import networkx as nx

from optsearch.search.store import RunStore

NODE_COLOURS = {"ok": "#9ecae1", "init": "#fdd0a2"}
FAILED_COLOUR = "#fc9272"
MAX_HEIGHT_IN = 200
_LONG_FLOAT = re.compile(r"-?\d+\.\d{5,}(?:e[-+]?\d+)?")


def ancestry(store: RunStore, candidate_id: int) -> list:
    """Rows from the root (an initial program) down to `candidate_id`, oldest first."""
    chain, seen = [], set()
    row = store.candidate(candidate_id)
    if row is None:
        raise KeyError(candidate_id)
    while row is not None and row["id"] not in seen:  # `seen`: a corrupt store must not loop
        seen.add(row["id"])
        chain.append(row)
        row = None if row["parent_id"] is None else store.candidate(row["parent_id"])
    return chain[::-1]


def short_detail(detail: str) -> str:
    """Mutation detail with long constants cut to 4 significant digits, for labels."""
    return _LONG_FLOAT.sub(lambda m: f"{float(m.group()):.4g}", detail)


def ancestry_graph(store: RunStore, candidate_ids) -> nx.DiGraph:
    """The union of the ancestries of `candidate_ids` as a tree; `generation` = depth."""
    targets = set(candidate_ids)
    graph = nx.DiGraph()
    for cid in sorted(targets):
        chain = ancestry(store, cid)
        for depth, row in enumerate(chain):
            graph.add_node(row["id"], generation=depth, fitness=row["aggregate"],
                           status=row["status"], mutation=row["mutation"],
                           target=row["id"] in targets)
        for parent, child in itertools.pairwise(chain):
            graph.add_edge(parent["id"], child["id"], mutation=child["mutation"],
                           detail=child["detail"])
    return graph


def graph_dict(graph: nx.DiGraph) -> dict:
    """JSON form: nodes with their attributes, edges with the mutation that made the child."""
    nodes = [{"id": n, **graph.nodes[n]} for n in sorted(graph.nodes)]
    edges = [{"parent": u, "child": v, **graph.edges[u, v]} for u, v in sorted(graph.edges)]
    return {"nodes": nodes, "edges": edges}


def generation_layers(graph: nx.DiGraph) -> dict[int, list[int]]:
    """Nodes grouped by generation, keyed by -generation so that networkx's
    `multipartite_layout` (layers in ascending key order, bottom to top) puts the root on top.
    Within a layer nodes keep depth-first order from the roots, which keeps the tree's edges
    from crossing (the layout itself does not try)."""
    layers: dict[int, list[int]] = {}
    roots = sorted(n for n in graph.nodes if graph.in_degree(n) == 0)
    for root in roots:
        for node in nx.dfs_preorder_nodes(graph, root, sort_neighbors=sorted):
            layers.setdefault(-graph.nodes[node]["generation"], []).append(node)
    return layers


def lineage_layout(graph: nx.DiGraph) -> dict:
    """networkx's layered layout, one row per generation, in units of the spacing between
    rows (and between the nodes of a row): the layout fits everything into [-1, 1], which
    would shrink a long chain's rows to slivers next to fixed-size labels."""
    layers = generation_layers(graph)
    pos = nx.multipartite_layout(graph, subset_key=layers, align="horizontal")
    steps = max(len(layers) - 1, max((len(v) for v in layers.values()), default=1) - 1)
    if not steps:
        return {n: (0.0, 0.0) for n in pos}
    coords = list(pos.values())
    extent = max(max(c[k] for c in coords) - min(c[k] for c in coords) for k in (0, 1))
    return {n: (float(x * steps / extent), float(y * steps / extent)) for n, (x, y) in pos.items()}


def _node_colour(attrs: dict) -> str:
    if attrs["mutation"] == "init":
        return NODE_COLOURS["init"]
    return NODE_COLOURS["ok"] if attrs["status"] == "ok" else FAILED_COLOUR


def _node_label(node: int, attrs: dict) -> str:
    fitness = attrs["fitness"]
    return f"#{node}\n" + ("-" if fitness is None else f"{fitness:.3f}")


def _edge_label(ax, start, end, text: str) -> None:
    """Beside the edge, not on it (a vertical chain would hide it under the line), and on
    the side the edge leans to, so the two labels of a fork point away from each other."""
    (x0, y0), (x1, y1) = start, end
    x, y = x0 + 0.55 * (x1 - x0), y0 + 0.55 * (y1 - y0)
    if x1 < x0:
        ax.text(x - 0.08, y, text, fontsize=7, va="center", ha="right", color="#333333")
    else:
        ax.text(x + 0.08, y, text, fontsize=7, va="center", ha="left", color="#333333")


def draw_lineage(graph: nx.DiGraph, path_or_file, fmt: str | None = None) -> None:
    """Render the graph to PNG or SVG (`fmt`, else from the file name) with matplotlib."""
    import matplotlib
    matplotlib.use("Agg")  # headless: no display on a cluster node or in CI
    import matplotlib.pyplot as plt
    pos = lineage_layout(graph)
    generations = 1 + max((a["generation"] for _, a in graph.nodes(data=True)), default=0)
    xs = [p[0] for p in pos.values()] or [0.0]
    columns = 1 + max(xs) - min(xs)
    # Room per generation for the edge label, per column for a label beside each edge; the
    # cap keeps a pathological thousand-generation chain under matplotlib's pixel limit.
    height = min(max(3.0, 0.8 * generations + 0.8), MAX_HEIGHT_IN)
    fig, ax = plt.subplots(figsize=(max(5.0, 3.2 * columns + 1.5), height))
    nodes = list(graph.nodes)
    nx.draw_networkx_edges(graph, pos, ax=ax, arrows=True, arrowsize=10, edge_color="#888888",
                           node_size=900)
    nx.draw_networkx_nodes(graph, pos, ax=ax, nodelist=nodes, node_size=900,
                           node_color=[_node_colour(graph.nodes[n]) for n in nodes],
                           edgecolors=["#d62728" if graph.nodes[n]["target"] else "#555555"
                                       for n in nodes],
                           linewidths=[2.5 if graph.nodes[n]["target"] else 1.0 for n in nodes])
    nx.draw_networkx_labels(graph, pos, ax=ax, font_size=7,
                            labels={n: _node_label(n, graph.nodes[n]) for n in nodes})
    for u, v, attrs in graph.edges(data=True):
        _edge_label(ax, pos[u], pos[v], short_detail(attrs["detail"]))
    ys = [p[1] for p in pos.values()] or [0.0]
    # Edge labels sit right (or left) of their edge: leave them room inside the axes.
    ax.set_xlim(min(xs) - (1.6 if columns > 1 else 0.5), max(xs) + 1.6)
    ax.set_ylim(min(ys) - 0.5, max(ys) + 0.5)
    ax.set_axis_off()
    ax.set_title("ancestry (fitness under each id; red ring = requested candidate)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path_or_file, format=fmt, dpi=110)
    plt.close(fig)
