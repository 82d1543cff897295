# SGD with heavy-ball momentum, as torch.optim.SGD(momentum=0.9, dampening=0) computes it.
def train(w, g, m, lr):
    m = m * 0.9
    m = m + g
    lr = lr * 0.01
    update = m * lr
    return update, m
