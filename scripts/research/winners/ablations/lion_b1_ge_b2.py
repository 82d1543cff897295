# Lion's form with beta1 >= beta2 (0.99 / 0.9): one constant change from Lion proper. For
# bench_mutation_odds --parent: how often does one mutation turn it into Lion with b1 < b2?
def train(w, g, m, lr):
    update = interp(g, m, 0.99)
    update = sign(update)
    m = interp(g, m, 0.9)
    wd = w * 0.1
    update = update + wd
    lr = lr * 0.0001
    update = update * lr
    return update, m
