# Winner of scripts.research.rediscovery seed 2 on the default suite with hurdles on, 30 minutes
# on one core, 2026-12-04 (fitness 17.34 on the search seeds; 7.53 on default@10 against
# lr-tuned AdamW's 4.21): v is clipped to norm lr every step, so m / sqrt(v) is a sign-like
# step, plus clip(w, mean(w)), a term in the weights' mean. Copied from the run's best.py.
def train(w, g, m, v, lr):
    g2 = square(g)
    m = interp(g, 0.1373740789594586, m)
    v = interp(g2, v, 0.9920113728709267)
    sqrt_v = sqrt(v)
    v = clip_by_norm(v, lr)
    update = m / sqrt_v
    wd = mean(w)
    wd = clip(w, wd)
    update = update + wd
    sqrt_v = log1p(sqrt_v)
    w = log1p(v)
    sqrt_v = 1.1908969329852541 * -0.7515349111301705
    lr = lr * 0.015538602726204661
    g2 = sinh(w)
    update = update * lr
    lr = wd * update
    m = sqrt_v * g2
    g2 = log1p(v)
    return update, m, v
