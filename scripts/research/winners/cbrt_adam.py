# Winner of scripts.research.rediscovery seed 3 on the ts512 suite with the paper's pool
# (--pool paper), hurdles off, 11 minutes on one core, 2026-12-07 (fitness 21.10 on the
# search seeds; 6.41 +- 0.22 on ts512@10 against lr-tuned AdamW's 3.15 +- 0.15): Adam's
# m / sqrt(v) through a cube root, a softened sign. Copied from the run's best.py.
def train(w, g, m, v, lr):
    g2 = square(g)
    m = interp(g, m, 0.9)
    v = interp(g2, v, 0.999)
    sqrt_v = sqrt(v)
    update = m / sqrt_v
    wd = w * 0.01
    update = cbrt(update)
    lr = lr * 0.008
    update = update * lr
    return update, m, v
