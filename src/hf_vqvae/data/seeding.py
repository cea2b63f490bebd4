"""Random preprocessing that a resumed run repeats exactly: each example's random crop, window or clip is drawn
from a generator seeded by (seed, epoch, example index).

Drawing from torch's global RNG instead, as the preprocessors do by default, cannot be resumed exactly: Accelerate's
loader fetches one batch ahead, so the checkpoint after step k has already spent the draws of batch k + 1, which a
resumed run spends a second time, shifting every later global draw (and with it the quantizer's dead-code
restarts). Seeding per example makes each draw independent of when, and in which process, the example is read.
"""

import numpy as np
import torch
from torch.utils.data import Dataset


def example_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that is a function of `(seed, epoch, index)` only."""
    (state,) = np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)
    return int(state) >> 1


class ExampleSeededDataset(Dataset):
    """
    A map-style dataset whose preprocessing draws come from `generator`, re-seeded before each example with
    `example_seed(seed, epoch, index)`.

    Args:
        dataset: The prepared dataset (its preprocessing built with this `generator`).
        generator (`torch.Generator`): The generator the preprocessing draws from.
        seed (`int`): The run's seed.
    """

    def __init__(self, dataset, generator: torch.Generator, seed: int):
        self.dataset, self.generator, self.seed = dataset, generator, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called at the start of every epoch, so that each epoch draws new crops."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        self.generator.manual_seed(example_seed(self.seed, self.epoch, int(index)))
        return self.dataset[index]
