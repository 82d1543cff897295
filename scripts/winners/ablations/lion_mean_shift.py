def train(w, g, m, v, lr):
    c = interp(g, m, 0.8)
    s = sign(c)
    wd = mean(w)
    update = s + wd
    m = interp(g, m, 0.95)
    lr = lr * 0.0003
    update = update * lr
    return update, m, v
