# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""The prior of a pipeline folder: stored in `prior/` beside the VQ-VAE, loaded the way the VQ-VAE was."""

from pathlib import Path

import torch
from transformers import AutoModel

from .remote_code import PRIOR_SUBFOLDER, is_remote_code
from .modeling_vqvae import VQVAEModel


def load_prior(vqvae: VQVAEModel) -> torch.nn.Module:
    """Load the prior stored in `prior/` beside the VQ-VAE (a local folder or a Hub repo), in the VQ-VAE's dtype."""
    source = vqvae.name_or_path
    if not source:
        raise ValueError(
            "This VQ-VAE was not loaded from a folder; pass the prior explicitly: "
            "VQSamplePipeline(model=vqvae, prior=prior)."
        )
    # The same revision / cache folder / token the VQ-VAE was loaded with (`pipeline()` passes them on to it).
    hub_kwargs = dict(getattr(vqvae, "hub_loading_kwargs", {}))
    subfolder = "/".join(filter(None, [hub_kwargs.pop("subfolder", None), PRIOR_SUBFOLDER]))
    local_prior = Path(source) / subfolder
    # A local folder without prior/config.json must not reach AutoModel, which then reports the root's
    # config as an "Unrecognized model".
    if Path(source).is_dir() and not (local_prior / "config.json").is_file():
        raise ValueError(no_prior_message(local_prior))
    try:
        # In the VQ-VAE's dtype: `pipeline(..., dtype=torch.bfloat16)` reaches only the model it loads itself.
        # A VQ-VAE loaded as a folder's remote code comes with a prior that is remote code too.
        remote = {"trust_remote_code": True} if is_remote_code(type(vqvae)) else {}
        return AutoModel.from_pretrained(
            source, subfolder=subfolder, dtype=vqvae.dtype, **hub_kwargs, **remote
        )
    except OSError as error:
        raise ValueError(no_prior_message(f"{source} (subfolder '{subfolder}')")) from error


def no_prior_message(where) -> str:
    return (
        f"No prior found at {where}: a vq-sample model folder holds the VQ-VAE at its root and the prior in "
        "`prior/` (train one with examples/train_prior.py)."
    )


__all__ = ["load_prior"]
