# AdaBelief (Zhuang et al. 2020) without bias correction: v tracks (g - m)^2, the "belief".
def train(w, g, m, v, lr):
    m = interp(g, m, 0.9)
    diff = g - m
    d2 = square(diff)
    v = interp(d2, v, 0.999)
    denom = sqrt(v)
    update = m / denom
    wd = w * 0.01
    update = update + wd
    lr = lr * 0.001
    update = update * lr
    return update, m, v
