# Winner of bench_rediscovery seed 1 on the bigbatch suite, 2026-12-02 (fitness 16.99 on the
# search seeds): sign descent divided by cos(v), v an EMA of the constant 1.55, so the step
# grows ~50x over the run -- a learned step schedule built from state. Reconstructed from its
# printed form: the EMA's rate (0.995) is a guess that gives the ~50x growth in 1000 steps.
def train(w, g, v, lr):
    v = interp(1.55, v, 0.995)
    c = cos(v)
    update = sign(g)
    update = update / c
    lr = lr * 0.01
    update = update * lr
    return update, v
