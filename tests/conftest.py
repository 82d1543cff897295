import os
import sys

import torch

# Tests run on 2 cores next to Ray workers: keep torch from oversubscribing them.
torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
