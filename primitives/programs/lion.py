# Lion (Chen et al. 2023): sign of an interpolation (beta1) of the momentum (beta2 EMA) and g.
def train(w, g, m, lr):
    update = interp(g, m, 0.9)
    update = sign(update)
    m = interp(g, m, 0.99)
    wd = w * 0.1
    update = update + wd
    lr = lr * 0.0001
    update = update * lr
    return update, m
