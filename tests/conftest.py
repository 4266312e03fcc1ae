import os

import torch

torch.set_num_threads(int(os.environ.get("COMMPRESS_TEST_THREADS", "1")))
