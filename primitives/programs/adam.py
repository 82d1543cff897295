# Adam with bias correction, as torch.optim.Adam computes it (eps 1e-8 from safe division).
# The third slot t counts steps: state slots start at zero and t = t + 1 each call.
def train(w, g, m, v, t, lr):
    t = t + 1.0
    m = interp(g, m, 0.9)
    g2 = square(g)
    v = interp(g2, v, 0.999)
    b1t = power(0.9, t)
    bc1 = 1.0 - b1t
    b2t = power(0.999, t)
    bc2 = 1.0 - b2t
    m_hat = m / bc1
    v_hat = v / bc2
    denom = sqrt(v_hat)
    update = m_hat / denom
    lr = lr * 0.001
    update = update * lr
    return update, m, v, t
