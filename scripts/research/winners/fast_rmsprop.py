# Winner of the default job, 2026-12-02 (runs/20261202-155949-s0/simplified.py, not kept):
# RMSProp without momentum at beta2 0.6 (a soft sign), the schedule entering as sqrt(lr).
# Exploits the default suite's noisy quadratic; loses to tuned AdamW at 10x (BENCHMARKS.md).
def train(w, g, v, lr):
    g2 = square(g)
    v = interp(g2, v, 0.6)
    sqrt_v = sqrt(v)
    update = g / sqrt_v
    shift = mean(w)
    update = update + shift
    step = sqrt(lr)
    step = step * 0.02
    update = update * step
    return update, v
