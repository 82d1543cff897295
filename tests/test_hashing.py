"""Duplicate detection keys: equal for equivalent rewrites, different for other behaviour."""

from optsearch.primitives import parse
from optsearch.primitives.hashing import fingerprint, structural_hash
from optsearch.primitives.reference import REFERENCE_NAMES, load_reference, reference_text

LION = reference_text("lion")


def keys(text):
    p = parse(text)
    return structural_hash(p), fingerprint(p)


def test_invariant_to_names_dead_code_order_and_commutation():
    base = keys(LION)
    renamed = LION.replace("update", "u").replace("wd", "decay").replace("m", "mom")
    renamed = renamed.replace("mom = interp(g, mom, 0.99)", "mom = interp(g, mom, 0.99)")
    with_dead = LION.replace("    wd = w * 0.1\n", "    junk = exp(w)\n    wd = w * 0.1\n")
    reordered = LION.replace("    wd = w * 0.1\n", "").replace(
        "    update = interp(g, m, 0.9)\n", "    wd = w * 0.1\n    update = interp(g, m, 0.9)\n")
    commuted = LION.replace("update = update + wd", "update = wd + update")
    for variant in (renamed, with_dead, reordered, commuted):
        assert variant != LION
        assert keys(variant) == base


def test_fingerprint_catches_algebraic_equivalence_structure_does_not():
    a = "def train(w, g, lr):\n    u = g * 2.0\n    u = u * lr\n    return u\n"
    b = "def train(w, g, lr):\n    u = g + g\n    u = u * lr\n    return u\n"
    assert structural_hash(parse(a)) != structural_hash(parse(b))
    assert fingerprint(parse(a)) == fingerprint(parse(b))


def test_different_behaviour_gives_different_keys():
    changed = [LION.replace("0.99", "0.98"), LION.replace("sign(update)", "tanh(update)"),
               LION.replace("interp(g, m, 0.9)", "interp(m, g, 0.9)")]
    base = keys(LION)
    for variant in changed:
        s, f = keys(variant)
        assert s != base[0] and f != base[1]


def test_reference_programs_all_distinct():
    hashes = {structural_hash(load_reference(n)) for n in REFERENCE_NAMES}
    prints = {fingerprint(load_reference(n)) for n in REFERENCE_NAMES}
    assert len(hashes) == len(prints) == len(REFERENCE_NAMES)
