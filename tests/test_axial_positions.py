"""Axial position embeddings of the transformer prior: their table, the surgery that adds them to a trained prior,
and every sampling path reading them."""

import pytest
import torch

from hf_vqvae.models.prior.axial_positions import AxialPositionEmbedding
from hf_vqvae.models.prior.configuration_prior import VQPriorConfig
from hf_vqvae.models.prior.modeling_prior import VQPriorModel


def video_prior(**overrides) -> VQPriorModel:
    sizes = {"codebook_size": 16, "hidden_size": 16, "num_layers": 2, "num_heads": 2}
    return VQPriorModel(VQPriorConfig(code_shape=[2, 3, 4], **sizes, **overrides)).eval()


def randomised(prior: VQPriorModel) -> VQPriorModel:
    """The prior with non-zero axial tables, so that a path that forgot them would give other logits."""
    with torch.no_grad():
        for table in prior.backbone.axial_positions.tables:
            table.normal_(std=0.5, generator=torch.Generator().manual_seed(table.shape[0]))
    return prior


def test_the_table_sums_one_vector_per_axis_at_each_raster_position():
    embedding = AxialPositionEmbedding((2, 3), hidden_size=1)
    with torch.no_grad():
        embedding.tables[0].copy_(torch.tensor([[10.0], [20.0]]))
        embedding.tables[1].copy_(torch.tensor([[1.0], [2.0], [3.0]]))
    assert embedding().squeeze(1).tolist() == [11.0, 12.0, 13.0, 21.0, 22.0, 23.0]


def test_added_axial_positions_start_at_zero_and_leave_the_prior_unchanged():
    prior = video_prior()
    extended = prior.with_axial_positions().eval()
    codes = torch.randint(0, 16, (3, 2, 3, 4))
    assert extended.config.axial_positions and not prior.config.axial_positions
    shapes = [tuple(table.shape) for table in extended.backbone.axial_positions.tables]
    assert shapes == [(2, 16), (3, 16), (4, 16)]
    assert torch.equal(extended(codes).logits, prior(codes).logits)
    # A new prior's tables start at zero too (through the meta device: test_transformers_conventions.py).
    assert not any(table.any() for table in video_prior(axial_positions=True).backbone.axial_positions.tables)


def test_axial_positions_change_the_logits_and_survive_saving(tmp_path):
    prior = randomised(video_prior(axial_positions=True))
    codes = torch.randint(0, 16, (2, 2, 3, 4))
    plain = video_prior()
    plain.load_state_dict(prior.state_dict(), strict=False)
    assert not torch.allclose(plain(codes).logits, prior(codes).logits)
    prior.save_pretrained(tmp_path)
    reloaded = VQPriorModel.from_pretrained(tmp_path).eval()
    assert torch.equal(reloaded(codes).logits, prior(codes).logits)


@pytest.mark.parametrize("options", [{}, {"prompt_codes": torch.arange(7).view(1, 7) % 16}])
def test_every_sampling_path_reads_the_axial_positions(options):
    """Greedy sampling picks each position's argmax of the teacher-forced logits, which include the axial
    positions; the uncached, cached and compiled samplers all agree with it."""
    prior = randomised(video_prior(axial_positions=True))
    greedy = {"top_k": 1, **options}
    cached = prior.generate(2, **greedy)
    teacher_forced = prior(cached).logits.argmax(-1)
    first = options["prompt_codes"].shape[1] if options else 0
    assert torch.equal(teacher_forced.flatten(1)[:, first:], cached.flatten(1)[:, first:])
    assert torch.equal(prior.generate(2, use_cache=False, **greedy), cached)
    assert torch.equal(prior.generate(2, compile=True, **greedy), cached)


def test_guided_sampling_reads_the_axial_positions_in_every_pass():
    """Guidance runs the class and "no label" rows through the same sampler: the compiled and uncached paths give
    the cached path's codes."""
    prior = randomised(video_prior(axial_positions=True, num_classes=2, condition_dropout=0.1))
    codes = [
        prior.generate(2, [0, 1], generator=torch.Generator().manual_seed(0), guidance_scale=3.0, **options)
        for options in ({}, {"use_cache": False}, {"compile": True})
    ]
    assert torch.equal(codes[0], codes[1]) and torch.equal(codes[0], codes[2])


def test_the_compiled_step_reads_the_current_axial_positions():
    """The compiled step is kept between runs; a run after the weights changed samples with the new ones."""
    prior = video_prior(axial_positions=True)
    prior.generate(1, top_k=1, compile=True)
    randomised(prior)
    assert torch.equal(prior.generate(1, top_k=1, compile=True), prior.generate(1, top_k=1))


def test_axial_positions_are_refused_for_the_pixelcnn():
    with pytest.raises(ValueError, match="only prior_type='transformer' takes position embeddings"):
        VQPriorConfig(prior_type="pixelcnn", code_shape=[4, 4], axial_positions=True)
    pixelcnn = VQPriorModel(
        VQPriorConfig(prior_type="pixelcnn", codebook_size=16, code_shape=[3, 3], hidden_size=8)
    )
    with pytest.raises(ValueError, match="belong to transformer priors; this one is a pixelcnn"):
        pixelcnn.with_axial_positions()
    with pytest.raises(ValueError, match="axial_positions must be True or False"):
        VQPriorConfig(axial_positions="yes")
