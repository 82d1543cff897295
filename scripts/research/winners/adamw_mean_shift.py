# Winner of bench_rediscovery seed 0 on the ts512 suite, 2026-12-02 (fitness 26.99 on the
# search seeds, 770 evaluations): AdamW with beta1 0.23 whose weight decay became a shift by
# the tensor's mean (mean(w)), at 8x the warm start's step. Copied from the run's best.py.
def train(w, g, m, v, lr):
    g2 = square(g)
    m = interp(g, m, 0.23386241607774227)
    v = interp(g2, v, 0.999)
    sqrt_v = sqrt(v)
    update = m / sqrt_v
    wd = mean(w)
    update = update + wd
    lr = lr * 0.008
    update = update * lr
    return update, m, v
