# the ts512 winner without its mean(w) shift: AdamW beta1 0.23, no weight decay (ablation, 2026-12-03)
def train(w, g, m, v, lr):
    g2 = square(g)
    m = interp(g, m, 0.23386241607774227)
    v = interp(g2, v, 0.999)
    sqrt_v = sqrt(v)
    update = m / sqrt_v
    lr = lr * 0.008
    update = update * lr
    return update, m, v
