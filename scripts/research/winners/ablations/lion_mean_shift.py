# Lion .8/.95 with the ts512 winner's mean(w) shift added to its update (ablation, 2026-12-03)
def train(w, g, m, v, lr):
    c = interp(g, m, 0.8)
    s = sign(c)
    wd = mean(w)
    update = s + wd
    m = interp(g, m, 0.95)
    lr = lr * 0.0003
    update = update * lr
    return update, m, v
