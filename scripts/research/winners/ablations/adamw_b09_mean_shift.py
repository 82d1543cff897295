# the ts512 winner with beta1 0.9 instead of 0.23 (ablation, 2026-12-03)
def train(w, g, m, v, lr):
    g2 = square(g)
    m = interp(g, m, 0.9)
    v = interp(g2, v, 0.999)
    sqrt_v = sqrt(v)
    update = m / sqrt_v
    wd = mean(w)
    update = update + wd
    lr = lr * 0.008
    update = update * lr
    return update, m, v
