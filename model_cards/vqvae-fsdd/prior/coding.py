# hf_vqvae 0.1.0: model code saved beside the weights, loaded with trust_remote_code=True.
"""Sampling with the choice of each code left to the caller: what an entropy coder needs from the prior."""

from collections.abc import Callable

import torch

from .guidance import check_guidance_scale, guided_rows, num_guidance_passes
from .prior_inputs import ClassLabels, sampling_class_labels


class PriorCodingMixin:
    """`generate_with`: the prior's sampler with `choose_next` in place of sampling (`VQPriorModel` mixes it in;
    it uses the model's `_sample_rows`)."""

    @torch.no_grad()
    def generate_with(
        self,
        choose_next: Callable[[torch.FloatTensor], torch.LongTensor],
        num_samples: int = 1,
        class_labels: ClassLabels | None = None,
        guidance_scale: float = 1.0,
    ) -> torch.LongTensor:
        """
        Runs the sampler over `num_samples` grids with `choose_next` in place of sampling: it receives the fp32
        logits `(num_samples, codebook_size)` of each position in raster order, after guidance, and returns the
        codes there `(num_samples,)`. An entropy coder uses it to encode known codes and to decode them again from
        exactly the same logits (`pipelines/compression.py`). Guidance at scale 0 gives the unconditional
        distribution of a conditional prior.

        Returns:
            `torch.LongTensor` of shape `(num_samples, *code_shape)`: the chosen codes.
        """
        check_guidance_scale(guidance_scale, self.config)
        class_labels = sampling_class_labels(class_labels, num_samples, self.config.num_classes, self.device)
        if guidance_scale == 0 and self.config.null_label_id is not None:
            # The unconditional distribution is the learned null label's own: one pass, not two weighted ones.
            null_labels = torch.full_like(class_labels, self.config.null_label_id)
            return self._sample_rows(num_samples, null_labels, choose_next, True, False, None)
        class_labels, choose_next, _ = guided_rows(
            class_labels, choose_next, None, guidance_scale, self.config
        )
        rows = num_samples * (1 if guidance_scale == 1 else num_guidance_passes(self.config))
        return self._sample_rows(rows, class_labels, choose_next, True, False, None)[:num_samples]
