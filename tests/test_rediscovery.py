"""The rediscovery benchmark's count of Lion-form programs: every program the backend trained
(in full or only on its rung) is counted once per structure, and only a full, successful
training counts as "full"."""

import os

from support import candidate_rows, small_config

from optsearch.primitives.hashing import structural_hash
from optsearch.primitives.parser import parse
from optsearch.primitives.reference import reference_text
from optsearch.search.driver import start_run
from optsearch.search.store import RunStore
from scripts.research.rediscovery import sign_momentum_forms

LION = reference_text("lion")
LION_B1_GE_B2 = (LION.replace("update = interp(g, m, 0.9)", "update = interp(g, m, 0.995)")
                 .replace("m = interp(g, m, 0.99)", "m = interp(g, m, 0.9)"))


def row(text, source="evaluated", status="ok"):
    return {"program": text, "structural_hash": structural_hash(parse(text)),
            "source": source, "status": status}


def test_lion_form_counts_distinct_structures_screened_and_trained_in_full():
    """Rule: a repeated structure counts once; a program stopped at the rung counts as
    screened, not as trained in full; a diverged full run is not "full"; non-sign programs
    and Lion with beta1 >= beta2 are not Lion form."""
    lion_slow = LION.replace("m = interp(g, m, 0.99)", "m = interp(g, m, 0.995)")
    lion_fast = LION.replace("m = interp(g, m, 0.99)", "m = interp(g, m, 0.98)")
    trained = [row(LION), row(LION), row(lion_slow, source="rung", status="stopped"),
               row(lion_fast, status="diverged"), row(reference_text("adamw")),
               row(LION_B1_GE_B2), row(reference_text("signum"))]
    forms = sign_momentum_forms(trained)
    assert forms["lion"] == [3, 1]
    assert forms["lion_b1_ge_b2"] == [1, 1]
    assert forms["signum"] == [1, 1]


def test_store_lists_every_trained_candidate_with_its_source(tmp_path):
    """Rule: trained_programs holds the candidates trained in full and those stopped at
    their rung, in proposal order, and no cache hit (a cache hit trains nothing)."""
    config = small_config(budget=40, seed=1, evaluation={"hurdles": True})
    run_dir = os.path.join(tmp_path, "run")
    driver = start_run(run_dir, config, parse(reference_text("adamw")))
    driver.run()
    driver.backend.close()
    driver.store.close()
    store = RunStore.open(run_dir, readonly=True)
    try:
        trained = [tuple(r) for r in store.trained_programs()]
    finally:
        store.close()
    on_disk = candidate_rows(run_dir, "source IN ('evaluated', 'rung')")
    assert trained == [(r[7], r[6], r[10], r[9]) for r in on_disk]
    assert {r[2] for r in trained} == {"evaluated", "rung"}
    assert candidate_rows(run_dir, "source = 'cache'")  # there were cache hits to leave out
