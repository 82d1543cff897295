def train(w, g, m, v, lr):
    c = interp(g, m, 0.8)
    s = sign(c)
    m = interp(g, m, 0.95)
    lr = lr * 0.0003
    update = s * lr
    return update, m, v
