"""Evaluations per second on 1 Ray node vs 2 simulated nodes, and evaluations lost when a node
dies mid-run (goal: 0). Both measured in one run, on one machine.

The nodes are `ray.cluster_utils.Cluster` nodes with one CPU (one evaluation worker) each,
all on this machine, joined through an address as `optsearch search --address` joins them;
"1 node" is one worker, "2 nodes" one worker on each node. The two are measured in
alternating rounds, so that a change in the machine's load hits both. Two simulated nodes
share this machine's cores: on 2 cores that other work also uses they cannot be twice as
fast; the ratio says what the shared machine allowed in this run.

    .venv/bin/python -m scripts.bench.cluster [--jobs 12] [--rounds 2] [--suite digits]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from ray.cluster_utils import Cluster

from optsearch.evaluator import make_backend
from optsearch.evaluator.ray_backend import RayLogRouting
from optsearch.primitives.reference import reference_text

PROGRAMS = ("adamw", "lion", "signum", "sgdm")
PROGRAM_FAILURES = ("error", "timeout")   # statuses a lost worker produces, never a program


def run_jobs(address: str, workers: int, texts: list[str], suite: str, lose=None) -> dict:
    """Evaluate `texts` on the cluster; `lose(done)` is called after every finished job."""
    with make_backend("ray", workers=workers, address=address, suite=suite,
                      seeds=(0,)) as backend:
        backend.worker_info()                       # every worker started: time evaluations only
        start = time.perf_counter()
        for job_id, text in enumerate(texts):
            backend.submit(job_id, text)
        results = []
        while len(results) < len(texts):
            results += backend.poll(timeout_s=1.0)
            if lose is not None:
                lose(len(results))
        seconds = time.perf_counter() - start
    lost = sum(fitness.status in PROGRAM_FAILURES for _, fitness, _ in results)
    returned = {job_id for job_id, _, _ in results}
    return {"per_s": len(texts) / seconds, "seconds": seconds, "lost": lost,
            "missing": len(texts) - len(returned), "duplicates": len(results) - len(returned)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=12, help="evaluations per measurement")
    p.add_argument("--rounds", type=int, default=2, help="alternating 1-node/2-node rounds")
    p.add_argument("--suite", default="digits")
    p.add_argument("--ray-log", default=os.path.join(tempfile.gettempdir(), "bench_cluster_ray.log"),
                   help="Ray's log lines go here")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="rb", dir="/tmp")  # a private cluster
    texts = [reference_text(PROGRAMS[k % len(PROGRAMS)]) for k in range(args.jobs)]

    with RayLogRouting(args.ray_log):
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1,
                                                                "include_dashboard": False})
        try:
            node = cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            rounds = [(run_jobs(cluster.address, 1, texts, args.suite),
                       run_jobs(cluster.address, 2, texts, args.suite))
                      for _ in range(args.rounds)]

            def lose_node(done: int) -> None:
                if done >= 2 and node in cluster.worker_nodes:
                    cluster.remove_node(node, allow_graceful=False)

            loss = run_jobs(cluster.address, 2, texts, args.suite, lose=lose_node)
        finally:
            cluster.shutdown()
    print(f"suite {args.suite}, {args.jobs} evaluations per measurement, one worker per node "
          f"(this machine: {os.cpu_count()} cores, shared; load average "
          f"{os.getloadavg()[0]:.1f})")
    for k, (one, two) in enumerate(rounds):
        print(f"round {k}: 1 node {one['per_s']:.3f} evaluations/s, 2 nodes "
              f"{two['per_s']:.3f} evaluations/s, ratio {two['per_s'] / one['per_s']:.2f}x")
    ratios = [two["per_s"] / one["per_s"] for one, two in rounds]
    print(f"ratio 2 nodes / 1 node: median {statistics.median(ratios):.2f}x over "
          f"{len(ratios)} rounds")
    print(f"node lost mid-run: {loss['lost']} evaluations lost, {loss['missing']} missing, "
          f"{loss['duplicates']} returned twice ({loss['per_s']:.3f} evaluations/s)")


if __name__ == "__main__":
    main()
