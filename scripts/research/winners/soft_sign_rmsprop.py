# Winner of bench_rediscovery seed 0 on the bigbatch suite, 2026-12-02 (fitness 16.22 on the
# search seeds): cbrt(g / sqrt(v)), v an EMA of g^2 at 0.9994 -- a soft-sign RMSProp without
# momentum. Rewritten here from its printed form; the scale constant is arbitrary
# (rank_rules tunes the step size).
def train(w, g, v, lr):
    g2 = square(g)
    v = interp(g2, v, 0.9994)
    sqrt_v = sqrt(v)
    update = g / sqrt_v
    update = cbrt(update)
    lr = lr * 0.1
    update = update * lr
    return update, v
