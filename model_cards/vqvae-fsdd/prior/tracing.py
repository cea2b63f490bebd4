# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""Whether the models run under `torch.compile` or `torch.export`.

The models check their inputs at the public entry points, and some checks look at the values (NaN, code ranges,
class labels): a compiled or exported graph cannot branch on those, so the checks run in eager mode and are left
out of traced graphs, whose inputs the caller vouches for.
"""

import torch


def is_tracing() -> bool:
    """True while torch.compile (dynamo) or torch.export traces the model."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting()


__all__ = ["is_tracing"]
