"""The order in which training sees its data, kept across a resume: loaders with their own generator (checkpointed
by Accelerate), epochs told to datasets that draw per-epoch randomness, and the batches of a resumed epoch skipped
to where the interrupted run stopped."""

import logging
import math
from collections.abc import Iterator

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from ..data.seeding import ExampleSeededDataset

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "checkpoint"
PARTIAL_SUFFIX = ".partial"


def _resumed_stream(
    train_loader, global_step: int, gradient_accumulation_steps: int
) -> Iterator[tuple[int, int, dict]]:
    """`resumable_batches` of a streaming loader, which has no length: the batches an uninterrupted run drew
    before `global_step` are drawn again and dropped, epoch after epoch, counting optimisation steps as Accelerate
    does (one every `gradient_accumulation_steps` batches, and one at an epoch's end). Drawing them runs their
    random preprocessing again, so torch's RNG is put back as the checkpoint restored it once they are skipped."""
    rng_state = torch.get_rng_state()
    epoch, batch_number, steps = 0, 0, 0
    while True:
        train_loader.set_epoch(epoch)
        in_epoch = 0
        for batch in train_loader:
            if steps < global_step:
                in_epoch += 1
                batch_number += 1
                steps += in_epoch % gradient_accumulation_steps == 0
                if steps == global_step:
                    torch.set_rng_state(rng_state)
                continue
            yield epoch, batch_number, batch
            batch_number += 1
        if steps < global_step and in_epoch == 0:
            raise ValueError(f"Cannot resume at step {global_step}: the streaming dataset yields no batches.")
        if steps < global_step and in_epoch % gradient_accumulation_steps:
            steps += 1  # the step Accelerate takes on the epoch's last, incomplete accumulation
            if steps == global_step:
                torch.set_rng_state(rng_state)
        epoch += 1


def training_loader(dataset, **kwargs) -> DataLoader:
    """A `DataLoader` (same arguments) whose iteration never draws from torch's global RNG.

    Starting an epoch draws the workers' base seed from the loader's generator, the global RNG when it has none. A
    run resumed mid-epoch restores the checkpoint's RNG state and then starts its partial epoch, drawing that seed
    again, while the interrupted run drew it before the checkpoint: every later global draw (dead-code restarts,
    dropout, random crops) would be shifted by one and the runs would part. A generator of the loader's own takes
    that draw; with the seedable sampler the data order still depends only on (seed, epoch).
    """
    return DataLoader(dataset, generator=torch.Generator(), **kwargs)


def set_dataset_epoch(loader, epoch: int) -> None:
    """Tells an `ExampleSeededDataset` which epoch it serves: Accelerate's loader calls a dataset's `set_epoch` only
    when its sampler has none of its own."""
    dataset = getattr(loader, "dataset", None)
    if isinstance(dataset, ExampleSeededDataset):
        dataset.set_epoch(epoch)


def resumable_batches(
    train_loader, accelerator: Accelerator, global_step: int, gradient_accumulation_steps: int
) -> Iterator[tuple[int, int, dict]]:
    """Yield `(epoch, batch_number, batch)` forever, starting where an uninterrupted run would be at
    `global_step`; `batch_number` counts the batches an uninterrupted run would have drawn before this one, so
    randomness seeded by it repeats on resume.

    The seedable sampler makes each epoch's order a function of (seed, epoch); a resumed run sets the epoch and
    skips the batches already consumed in it (Accelerate's `save_state` does not store the data position).
    Accelerate also steps on an epoch's last batch, so an epoch is ceil(batches / accumulation steps) steps.
    """
    try:
        batches_per_epoch = len(train_loader)
    except TypeError:
        yield from _resumed_stream(train_loader, global_step, gradient_accumulation_steps)
        return
    epoch, step_in_epoch = divmod(global_step, math.ceil(batches_per_epoch / gradient_accumulation_steps))
    skip = step_in_epoch * gradient_accumulation_steps
    batch_number = epoch * batches_per_epoch + skip
    while True:
        train_loader.set_epoch(epoch)
        set_dataset_epoch(train_loader, epoch)
        loader = accelerator.skip_first_batches(train_loader, skip) if skip else train_loader
        for batch in loader:
            yield epoch, batch_number, batch
            batch_number += 1
        epoch, skip = epoch + 1, 0
