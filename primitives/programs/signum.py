# Signum (Bernstein et al. 2018): sign of an EMA of the gradient, one beta, decoupled decay.
def train(w, g, m, lr):
    m = interp(g, m, 0.9)
    update = sign(m)
    wd = w * 0.1
    update = update + wd
    lr = lr * 0.0001
    update = update * lr
    return update, m
