# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""Configuration of the autoregressive priors over VQ-VAE code grids."""

from math import prod

from transformers import PreTrainedConfig

from .number_checks import is_int, is_real
from .remote_code import VERSION_KEY, check_code_version

PRIOR_TYPES = ("transformer", "pixelcnn")

# Integer fields and their smallest valid values: 0 classes is an unconditional prior, 0 augmentation labels none.
INT_FIELD_MINIMUMS = {
    "codebook_size": 2,
    "num_classes": 0,
    "hidden_size": 1,
    "num_layers": 1,
    "num_heads": 1,
    "kernel_size": 1,
    "augment_dim": 0,
}


class VQPriorConfig(PreTrainedConfig):
    r"""
    Configuration of a [`VQPriorModel`]: an autoregressive model of the code grids a [`VQVAEModel`] produces.

    Args:
        prior_type (`str`, defaults to `"transformer"`):
            `"transformer"`: a causal decoder over the codes in raster order, for any modality.
            `"pixelcnn"`: the paper's gated PixelCNN (van den Oord et al., 2016); 2-D code grids only.
        codebook_size (`int`, defaults to 512):
            K, the number of codes of the VQ-VAE this prior models.
        code_shape (`list[int]`, defaults to `[8, 8]`):
            The code grid of one sample, e.g. `[8, 8]` (image), `[250]` (audio), `[8, 16, 16]` (video).
        num_classes (`int`, defaults to 0):
            Number of classes for class-conditional sampling; 0 makes the prior unconditional.
        hidden_size (`int`, defaults to 256):
            Width of the backbone (transformer embedding size, PixelCNN feature maps).
        num_layers (`int`, defaults to 4):
            Transformer blocks, or gated PixelCNN layers.
        num_heads (`int`, defaults to 8):
            Attention heads of the transformer prior.
        dropout (`float`, defaults to 0.0):
            Dropout inside the backbone during training.
        kernel_size (`int`, defaults to 3):
            Size of the PixelCNN's masked kernels (odd).
        initializer_range (`float`, defaults to 0.02):
            Standard deviation of the normal initialisation of linear and embedding weights.
        augment_dim (`int`, defaults to 0):
            Size of the augmentation labels a transformer prior can be conditioned on while it trains
            (non-leaking augmentation, as `augment_dim` in Karras et al.'s EDM): a grid encoded from a shifted
            image carries a vector saying how it was shifted, and an unaugmented grid the zero vector. Sampling
            and likelihoods use the zero vector, so the prior models the unaugmented data while it learns from
            the augmented grids too. 0 turns it off.
        condition_dropout (`float`, defaults to 0.0):
            Classifier-free guidance (Ho & Salimans, 2022): the fraction of training examples whose class label is
            replaced by a learned "no label" while a class-conditional prior trains. Above 0 the prior holds that
            extra label (id `num_classes`, see `null_label_id`), which gives it an unconditional distribution for
            `generate(guidance_scale=...)`; 0 leaves it without one (guidance then falls back to the mixture of
            the classes).
        axial_positions (`bool`, defaults to `False`):
            Transformer prior: also add learned axial position embeddings (one table per axis of `code_shape`,
            summed, as in VideoGPT) to GPT-2's own positions, so that codes in the same row, column or time slice
            share part of their position. They start at zero, so they can be added to a trained prior
            (`with_axial_positions`).
    """

    model_type = "hf_vqvae_prior"
    # transformers' common names, for code (and tests) that read them from any config.
    attribute_map = {"num_hidden_layers": "num_layers", "num_attention_heads": "num_heads"}

    prior_type: str = "transformer"
    codebook_size: int = 512
    code_shape: list[int] | tuple[int, ...] = (8, 8)
    num_classes: int = 0
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 8
    dropout: float = 0.0
    kernel_size: int = 3
    initializer_range: float = 0.02
    augment_dim: int = 0
    condition_dropout: float = 0.0
    axial_positions: bool = False

    def __post_init__(self, **kwargs):
        check_code_version(type(self), kwargs.get(VERSION_KEY))  # remote code of the config's version
        self.code_shape = [self.code_shape] if is_int(self.code_shape) else list(self.code_shape)
        self._check_fields()
        self.code_shape = [int(size) for size in self.code_shape]
        super().__post_init__(**kwargs)

    def _check_fields(self) -> None:
        if self.prior_type not in PRIOR_TYPES:
            raise ValueError(f"Unknown prior_type={self.prior_type!r}; expected one of {PRIOR_TYPES}.")
        for name, minimum in INT_FIELD_MINIMUMS.items():
            value = getattr(self, name)
            if not is_int(value) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
        if not self.code_shape or not all(is_int(size) and size >= 1 for size in self.code_shape):
            raise ValueError(f"code_shape must be a non-empty list of positive ints, got {self.code_shape}.")
        if not is_real(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout!r}.")
        if not is_real(self.condition_dropout) or not 0.0 <= self.condition_dropout < 1.0:
            raise ValueError(f"condition_dropout must lie in [0, 1), got {self.condition_dropout!r}.")
        if self.condition_dropout and not self.num_classes:
            raise ValueError(
                f"condition_dropout={self.condition_dropout} drops class labels, but this prior is unconditional "
                "(num_classes=0): give it classes or set condition_dropout=0."
            )
        if self.prior_type == "transformer" and self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})."
            )
        if not isinstance(self.axial_positions, bool):
            raise ValueError(f"axial_positions must be True or False, got {self.axial_positions!r}.")
        if self.prior_type == "pixelcnn":
            if self.axial_positions:
                raise ValueError(
                    "axial_positions=True: only prior_type='transformer' takes position embeddings (the PixelCNN's "
                    "masked convolutions know where they are)."
                )
            if self.augment_dim:
                raise ValueError(
                    f"augment_dim={self.augment_dim}: only prior_type='transformer' takes augmentation labels."
                )
            if len(self.code_shape) != 2:
                raise ValueError(
                    f"prior_type='pixelcnn' models 2-D code grids, got code_shape={self.code_shape}; "
                    "use prior_type='transformer' for audio or video codes."
                )
            if self.kernel_size < 3 or self.kernel_size % 2 == 0:
                raise ValueError(f"kernel_size must be odd and >= 3, got {self.kernel_size}.")

    @property
    def num_codes(self) -> int:
        """Number of codes in one sample's grid (the sequence length of the prior)."""
        return prod(self.code_shape)

    @property
    def null_label_id(self) -> int | None:
        """The class id of the learned "no label" of a prior trained with condition dropout (`num_classes`), or
        `None` when the prior has no such label."""
        return self.num_classes if self.condition_dropout > 0 else None

    @property
    def num_label_embeddings(self) -> int:
        """How many labels the backbone embeds: the classes, plus the "no label" of condition dropout."""
        return self.num_classes + (self.null_label_id is not None)

    def check_matches(self, vqvae_config) -> None:
        """Raise a `ValueError` naming the field that disagrees unless this prior models the codebook and the code
        grid of the VQ-VAE of `vqvae_config`."""
        if self.codebook_size != vqvae_config.codebook_size:
            raise ValueError(
                f"The prior models {self.codebook_size} codes but the VQ-VAE has codebook_size "
                f"{vqvae_config.codebook_size}."
            )
        if list(self.code_shape) != list(vqvae_config.code_shape):
            raise ValueError(
                f"The prior's code_shape {list(self.code_shape)} does not match the VQ-VAE's code grid "
                f"{vqvae_config.code_shape} (sample_size {vqvae_config.sample_size} / downsample_factors "
                f"{vqvae_config.downsample_factors})."
            )


__all__ = ["VQPriorConfig"]
