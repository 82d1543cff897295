# AdaMax (Kingma & Ba 2015, torch.optim.Adamax without bias correction): Adam's second moment
# replaced by an exponentially weighted infinity norm, u = max(0.999 * u, |g|). Not shipped.
def train(w, g, m, u, lr):
    m = interp(g, m, 0.9)
    u = u * 0.999
    a = abs(g)
    u = max(u, a)
    update = m / u
    lr = lr * 0.002
    update = update * lr
    return update, m, u
