# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""`eval_mode`: evaluate or sample from a module that may be training, without disturbing its modes."""

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put `module` in eval mode for the block, then give every submodule back its own mode.

    `module.train(was_training)` would set all submodules alike, waking a part that training keeps frozen in eval
    mode (a VQ-VAE's encoder and codebook under `--train_decoder_only`)."""
    modes = [(submodule, submodule.training) for submodule in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for submodule, training in modes:
            submodule.training = training
