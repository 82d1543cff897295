# AdaGrad, as torch.optim.Adagrad(eps=1e-8) computes it: a running sum of squared gradients.
def train(w, g, s, lr):
    g2 = square(g)
    s = s + g2
    denom = sqrt(s)
    update = g / denom
    lr = lr * 0.01
    update = update * lr
    return update, s
