# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""Model surgery on a trained prior, for fine-tuning: a "no label" for classifier-free guidance, augmentation labels,
axial positions and more transformer blocks. Each change leaves what the prior computes as it was until training
moves it."""

import math
import re
from copy import deepcopy

import torch

from .number_checks import is_real


def added_layer_positions(num_layers: int, num_added_layers: int) -> list[bool]:
    """Block order of a transformer deepened by `num_added_layers`: `True` marks a new block, `False` a trained
    one (in their order). A new block follows the last trained block of each of `num_added_layers` equal groups,
    so one new block goes last."""
    after = [math.ceil((group + 1) * num_layers / num_added_layers) - 1 for group in range(num_added_layers)]
    order = []
    for index in range(num_layers):
        order += [False] + [True] * after.count(index)
    return order


class PriorSurgeryMixin:
    """The surgery methods of [`VQPriorModel`]."""

    def add_null_label(self, condition_dropout: float) -> None:
        """
        Prepares a trained class-conditional prior for fine-tuning with condition dropout: the backbone gains the
        "no label" embedding, initialised to the mean of its class embeddings, and the config records
        `condition_dropout`. The class-conditional distributions are unchanged.

        Args:
            condition_dropout (`float`):
                Fraction of training labels to replace by the "no label", in (0, 1).
        """
        if self.config.null_label_id is not None:
            raise ValueError(
                f"This prior already has a 'no label' (condition_dropout={self.config.condition_dropout}); "
                "change config.condition_dropout to train on with another fraction."
            )
        if not is_real(condition_dropout) or not 0 < condition_dropout < 1:
            raise ValueError(f"condition_dropout must lie in (0, 1), got {condition_dropout!r}.")
        if not self.config.num_classes:
            raise ValueError("An unconditional prior (config.num_classes=0) has no class labels to drop.")
        self.backbone.add_null_label()
        self.config.condition_dropout = float(condition_dropout)

    def with_augment_labels(self, augment_dim: int):
        """A copy of this prior that also takes augmentation labels of size `augment_dim`, through a
        zero-initialised embedding: the same model until training moves it."""
        return self._with_new_parts(
            self.state_dict(), ("backbone.augment_embedding.",), augment_dim=augment_dim
        )

    def with_axial_positions(self):
        """A copy of this transformer prior with axial position embeddings ([`AxialPositionEmbedding`]), which
        start at zero: the same model until training moves them."""
        if self.config.prior_type != "transformer":
            raise ValueError(
                f"Axial positions (--axial_positions) belong to transformer priors; this one is a "
                f"{self.config.prior_type}."
            )
        return self._with_new_parts(self.state_dict(), ("backbone.axial_positions.",), axial_positions=True)

    def with_added_layers(self, num_added_layers: int):
        """A copy of this transformer prior with `num_added_layers` more decoder blocks (block expansion, Wu et
        al. 2024, LLaMA Pro) placed by `added_layer_positions`, whose attention and MLP output projections start
        at zero: each new block adds nothing to the residual stream, so the copy computes exactly what this prior
        did until training moves it, and gradients reach the new blocks through those projections."""
        if self.config.prior_type != "transformer":
            raise ValueError(
                f"Adding layers (--num_added_layers) deepens transformer priors; this one is a "
                f"{self.config.prior_type}."
            )
        order = added_layer_positions(self.config.num_layers, num_added_layers)
        trained_block_positions = [position for position, is_new in enumerate(order) if not is_new]
        block_key = re.compile(r"^backbone\.decoder\.h\.(\d+)\.")
        state = {
            block_key.sub(
                lambda match: f"backbone.decoder.h.{trained_block_positions[int(match[1])]}.", name
            ): tensor
            for name, tensor in self.state_dict().items()
        }
        new_parts = tuple(
            f"backbone.decoder.h.{position}." for position, is_new in enumerate(order) if is_new
        )
        deeper = self._with_new_parts(state, new_parts, num_layers=len(order))
        new_blocks = [block for block, is_new in zip(deeper.backbone.decoder.h, order, strict=True) if is_new]
        with torch.no_grad():
            for block in new_blocks:
                for projection in (block.attn.c_proj, block.mlp.c_proj):
                    projection.weight.zero_()
                    projection.bias.zero_()
        return deeper

    def _with_new_parts(self, state: dict, new_parts: tuple[str, ...], **changes):
        """A prior whose config is this one's with `changes`, holding `state` (the trained weights, under their
        names in the new model); the weights it lacks must all be new parts (names starting with one of
        `new_parts`), which keep the model's initialisation."""
        config = deepcopy(self.config)
        for field, value in changes.items():
            setattr(config, field, value)
        extended = type(self)(config)
        missing, unexpected = extended.load_state_dict(state, strict=False)
        if unexpected or not missing or not all(name.startswith(new_parts) for name in missing):
            raise ValueError(f"Could not extend the prior with {changes}: {missing=}, {unexpected=}.")
        return extended
