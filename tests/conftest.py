
import torch

# Tests run on 2 cores next to Ray workers: keep torch from oversubscribing them.
torch.set_num_threads(1)
