# Lion .8/.95 without weight decay as a program file, at rank_rules' lr grid centre (ablation, 2026-12-03)
def train(w, g, m, v, lr):
    c = interp(g, m, 0.8)
    s = sign(c)
    m = interp(g, m, 0.95)
    lr = lr * 0.0003
    update = s * lr
    return update, m, v
