"""Tests of the gated PixelCNN backbone: shapes, exact causality and receptive field, class conditioning,
dropout, and the cached sampler against the naive one."""

import pytest
import torch

from hf_vqvae.models.prior.configuration_prior import VQPriorConfig
from hf_vqvae.models.prior.modeling_prior import VQPriorModel
from hf_vqvae.models.prior.pixelcnn_backbone import GatedPixelCNNPrior

CODEBOOK_SIZE = 16
GRIDS = [(5, 5), (4, 6)]


def tiny_prior(code_shape=(5, 5), num_classes=0, kernel_size=3, **overrides) -> GatedPixelCNNPrior:
    config = VQPriorConfig(
        prior_type="pixelcnn",
        codebook_size=CODEBOOK_SIZE,
        code_shape=list(code_shape),
        num_classes=num_classes,
        hidden_size=16,
        num_layers=3,
        kernel_size=kernel_size,
        **overrides,
    )
    torch.manual_seed(0)
    return GatedPixelCNNPrior(config).eval()


def random_codes(batch_size: int, code_shape, seed: int = 0) -> torch.LongTensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(CODEBOOK_SIZE, (batch_size, *code_shape), generator=generator)


def recording_sampler(seed: int):
    """A `sample_next` drawing from softmax(logits) with a seeded generator, and the logits it was given."""
    generator = torch.Generator().manual_seed(seed)
    seen_logits = []

    def sample_next(logits: torch.FloatTensor) -> torch.LongTensor:
        seen_logits.append(logits)
        return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(-1)

    return sample_next, seen_logits


def expected_receptive_field(code_shape, kernel_size: int, num_layers: int) -> torch.BoolTensor:
    """`field[r, c, r2, c2]`: whether the logits at (r, c) should depend on the code at (r2, c2).

    With p = kernel_size // 2 and L layers (see the module docstring): the codes (r, c-1-L*p .. c-1) of the
    same row, and the rows r-1-L*p .. r-1 over the columns c-L*p .. c+L*p (up-and-right included).
    """
    height, width = code_shape
    reach = num_layers * (kernel_size // 2)
    rows = torch.arange(height)[:, None, None, None]
    columns = torch.arange(width)[None, :, None, None]
    rows2 = torch.arange(height)[None, None, :, None]
    columns2 = torch.arange(width)[None, None, None, :]
    same_row = (rows2 == rows) & (columns2 < columns) & (columns2 >= columns - 1 - reach)
    above = (rows2 < rows) & (rows2 >= rows - 1 - reach) & ((columns2 - columns).abs() <= reach)
    return same_row | above


def measured_dependencies(prior: GatedPixelCNNPrior, codes: torch.LongTensor) -> torch.BoolTensor:
    """`depends[r, c, r2, c2]`: whether the gradient of the logits at (r, c) w.r.t. the embedding of the code
    at (r2, c2) is non-zero. Exact: positions outside the convolutions' supports get exactly zero gradient."""
    embedded = {}
    handle = prior.embedding.register_forward_hook(lambda module, args, out: embedded.setdefault("out", out))
    logits = prior(codes)[0][0]  # the first grid's (H, W, K)
    handle.remove()
    height, width = codes.shape[1:]
    depends = torch.zeros(height, width, height, width, dtype=torch.bool)
    for row in range(height):
        for column in range(width):
            (grad,) = torch.autograd.grad(logits[row, column].sum(), embedded["out"], retain_graph=True)
            depends[row, column] = grad[0].abs().sum(dim=-1) > 0
    return depends


@pytest.mark.parametrize("code_shape", GRIDS)
def test_forward_shapes(code_shape):
    prior = tiny_prior(code_shape)
    logits, _ = prior(random_codes(3, code_shape))
    assert logits.shape == (3, *code_shape, CODEBOOK_SIZE)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("code_shape", GRIDS)
def test_logits_ignore_the_current_and_later_codes(code_shape):
    prior = tiny_prior(code_shape, kernel_size=5)
    height, width = code_shape
    num_codes = height * width
    codes = random_codes(1, code_shape).expand(num_codes, -1, -1)
    # Grid i of the batch has every code from raster position i on moved to another value.
    positions = torch.arange(num_codes)
    later = (positions[None, :] >= positions[:, None]).view(num_codes, height, width)
    offsets = torch.randint(1, CODEBOOK_SIZE, codes.shape, generator=torch.Generator().manual_seed(1))
    changed = torch.where(later, (codes + offsets) % CODEBOOK_SIZE, codes)
    logits, changed_logits = prior(codes)[0], prior(changed)[0]
    rows, columns = positions // width, positions % width
    torch.testing.assert_close(changed_logits[positions, rows, columns], logits[positions, rows, columns])


# 3 layers: kernel 3 reaches p * L = 3 codes, less than the grids, so the test also pins where the field ends;
# kernel 5 reaches 6, so every earlier code of both grids must be seen.
@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize("code_shape", GRIDS)
def test_receptive_field_is_exactly_the_causal_window(code_shape, kernel_size):
    prior = tiny_prior(code_shape, kernel_size=kernel_size)
    depends = measured_dependencies(prior, random_codes(1, code_shape))
    expected = expected_receptive_field(code_shape, kernel_size, num_layers=3)
    assert torch.equal(depends, expected)
    if kernel_size == 5:
        positions = torch.arange(code_shape[0] * code_shape[1])
        earlier = positions[None, :] < positions[:, None]
        assert torch.equal(expected.flatten(0, 1).flatten(1), earlier)


def test_no_blind_spot_above_right():
    # The original PixelCNN's stacked masked convolutions never see (r-1, c+2), (r-2, c+3), ...; the vertical
    # stack here sees every column of the rows above within its reach (c-3 .. c+3 for 3 layers of kernel 3).
    prior = tiny_prior((5, 5), kernel_size=3)
    depends = measured_dependencies(prior, random_codes(1, (5, 5)))
    assert depends[2, 0, 1, 1:4].all()
    assert depends[3, 1, 2, 2:5].all()
    assert depends[4, 0, 1, 1:4].all()


def test_class_conditioning_changes_logits():
    prior = tiny_prior(num_classes=3)
    codes = random_codes(1, (5, 5)).expand(3, -1, -1)
    logits, _ = prior(codes, torch.tensor([0, 1, 1]))
    torch.testing.assert_close(logits[1], logits[2])
    assert (logits[0] - logits[1]).abs().amax() > 1e-3
    # Even the first position, which sees no code, has class-dependent logits.
    assert (logits[0, 0, 0] - logits[1, 0, 0]).abs().amax() > 1e-3


def test_unconditional_prior_takes_no_labels():
    prior = tiny_prior(num_classes=0)
    codes = random_codes(2, (5, 5))
    assert prior(codes, None)[0].shape == (2, 5, 5, CODEBOOK_SIZE)
    assert sum(name.endswith("class_bias.weight") for name, _ in prior.named_parameters()) == 0

    # Labels are checked once, by the model that wraps the backbone.
    def model(num_classes: int) -> VQPriorModel:
        return VQPriorModel(
            VQPriorConfig(
                prior_type="pixelcnn", codebook_size=CODEBOOK_SIZE, code_shape=[5, 5], num_classes=num_classes
            )
        )

    with pytest.raises(ValueError, match="unconditional"):
        model(0)(codes, class_labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="class-conditional"):
        model(3)(codes)


def test_dropout_only_in_training():
    prior = tiny_prior(dropout=0.5)
    codes = random_codes(2, (5, 5))
    torch.testing.assert_close(prior(codes)[0], prior(codes)[0])
    prior.train()
    assert not torch.allclose(prior(codes)[0], prior(codes)[0])


@pytest.mark.parametrize("num_classes", [0, 3])
@pytest.mark.parametrize("code_shape", GRIDS)
def test_cached_sampling_matches_naive(code_shape, num_classes):
    prior = tiny_prior(code_shape, num_classes=num_classes)
    class_labels = torch.tensor([0, 2, 1]) if num_classes else None
    sample_naive, naive_logits = recording_sampler(seed=1)
    sample_cached, cached_logits = recording_sampler(seed=1)
    naive = prior.sample(3, class_labels, sample_naive, use_cache=False)
    cached = prior.sample(3, class_labels, sample_cached, use_cache=True)
    assert len(cached_logits) == len(naive_logits) == code_shape[0] * code_shape[1]
    torch.testing.assert_close(torch.stack(cached_logits), torch.stack(naive_logits), rtol=1e-5, atol=1e-5)
    assert torch.equal(cached, naive)
    # The step-by-step logits are the teacher-forced logits of the grid that was sampled.
    teacher_forced = prior(cached, class_labels)[0].flatten(1, 2).transpose(0, 1)
    torch.testing.assert_close(torch.stack(cached_logits), teacher_forced, rtol=1e-5, atol=1e-5)


def test_cached_sampling_never_runs_the_full_grid(monkeypatch):
    prior = tiny_prior()

    def full_forward(*args, **kwargs):
        raise AssertionError("use_cache=True must not rerun the network on the whole grid")

    monkeypatch.setattr(prior, "forward", full_forward)
    sample_next, _ = recording_sampler(seed=0)
    prior.sample(2, None, sample_next, use_cache=True)


@pytest.mark.parametrize("use_cache", [True, False])
def test_sample_shapes_dtype_range_and_progress(use_cache):
    prior = tiny_prior((4, 6), num_classes=3)
    sample_next, seen_logits = recording_sampler(seed=0)
    steps = []
    codes = prior.sample(
        5, torch.tensor([0, 1, 2, 0, 1]), sample_next, use_cache=use_cache, progress=lambda: steps.append(1)
    )
    assert codes.shape == (5, 4, 6)
    assert codes.dtype == torch.long
    assert codes.min() >= 0 and codes.max() < CODEBOOK_SIZE
    assert len(steps) == 4 * 6
    assert all(logits.shape == (5, CODEBOOK_SIZE) and logits.dtype == torch.float32 for logits in seen_logits)
