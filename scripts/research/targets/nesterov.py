# Nesterov momentum, as torch.optim.SGD(momentum=0.9, nesterov=True) computes it (no
# dampening): the step looks ahead along the momentum, g + 0.9 * m. Not a shipped reference.
def train(w, g, m, lr):
    m = m * 0.9
    m = m + g
    look = m * 0.9
    update = g + look
    lr = lr * 0.01
    update = update * lr
    return update, m
