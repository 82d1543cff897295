# RMSProp, as torch.optim.RMSprop(alpha=0.99, eps=1e-8) computes it.
def train(w, g, v, lr):
    g2 = square(g)
    v = interp(g2, v, 0.99)
    denom = sqrt(v)
    update = g / denom
    lr = lr * 0.01
    update = update * lr
    return update, v
