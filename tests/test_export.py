"""torch.export and torch.compile(fullgraph=True) of both model families: the traced graphs match eager, and the
input checks that look at values stay in eager mode (they would break a graph) while keeping their errors there."""

import pytest
import torch
from conftest import tiny_config

from hf_vqvae import VQPriorConfig, VQVAEConfig, VQVAEModel
from hf_vqvae.models.prior.modeling_prior import VQPriorModel

BATCH = torch.export.Dim("batch", min=1, max=64)


class Encode(torch.nn.Module):
    def __init__(self, model: VQVAEModel):
        super().__init__()
        self.model = model

    def forward(self, inputs):
        return self.model.encode(inputs).codes


class Decode(torch.nn.Module):
    def __init__(self, model: VQVAEModel):
        super().__init__()
        self.model = model

    def forward(self, codes):
        return self.model.decode(codes)


def tiny_vqvae(modality: str) -> VQVAEModel:
    torch.manual_seed(0)
    return VQVAEModel(tiny_config(modality)).eval()


def tiny_prior(prior_type: str) -> VQPriorModel:
    torch.manual_seed(0)
    config = VQPriorConfig(
        prior_type=prior_type,
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        code_shape=[4, 4],
        codebook_size=16,
        num_classes=3,
        condition_dropout=0.1,
    )
    return VQPriorModel(config).eval()


def example_inputs(model: VQVAEModel, batch: int) -> torch.Tensor:
    config = model.config
    if config.modality == "video":  # (B, T, C, H, W)
        num_frames, *size = config.sample_size
        return torch.rand(batch, num_frames, config.in_channels, *size) * 2 - 1
    return torch.rand(batch, config.in_channels, *config.sample_size) * 2 - 1


@pytest.mark.parametrize("modality", ["image", "audio", "video"])
@pytest.mark.parametrize("dynamic", [False, True])
def test_vqvae_encode_and_decode_export_and_match_eager(modality, dynamic):
    model = tiny_vqvae(modality)
    inputs = example_inputs(model, 2)
    shapes = ({0: BATCH},) if dynamic else None
    encode = torch.export.export(Encode(model), (inputs,), dynamic_shapes=shapes).module()
    codes = model.encode(inputs).codes
    decode = torch.export.export(Decode(model), (codes,), dynamic_shapes=shapes).module()
    other = example_inputs(model, 5 if dynamic else 2)
    other_codes = model.encode(other).codes
    assert torch.equal(encode(other), other_codes)
    torch.testing.assert_close(decode(other_codes), model.decode(other_codes))


def test_vqvae_forward_exports_with_its_losses_and_perplexity():
    model = tiny_vqvae("image")
    inputs = example_inputs(model, 3)
    exported = torch.export.export(model, (inputs,)).module()
    traced, eager = exported(inputs), model(inputs)
    torch.testing.assert_close(traced.reconstruction, eager.reconstruction)
    torch.testing.assert_close(traced.loss, eager.loss)
    torch.testing.assert_close(traced.perplexity, eager.perplexity)


@pytest.mark.parametrize("prior_type", ["transformer", "pixelcnn"])
@pytest.mark.parametrize("dynamic", [False, True])
def test_prior_forward_exports_and_matches_eager(prior_type, dynamic):
    prior = tiny_prior(prior_type)
    codes, labels = torch.randint(0, 16, (2, 4, 4)), torch.tensor([0, 3])  # 3: the "no label"
    shapes = ({0: BATCH}, {0: BATCH}) if dynamic else None
    exported = torch.export.export(prior, (codes, labels), dynamic_shapes=shapes).module()
    other_codes, other_labels = (
        (torch.randint(0, 16, (4, 4, 4)), torch.tensor([2, 1, 0, 3])) if dynamic else (codes, labels)
    )
    traced, eager = exported(other_codes, other_labels), prior(other_codes, other_labels)
    torch.testing.assert_close(traced.logits, eager.logits)
    torch.testing.assert_close(traced.loss, eager.loss)


def test_compile_fullgraph_matches_eager():
    model, prior = tiny_vqvae("image"), tiny_prior("transformer")
    inputs = example_inputs(model, 2)
    codes, labels = torch.randint(0, 16, (2, 4, 4)), torch.tensor([0, 1])
    compiled_model = torch.compile(model, fullgraph=True, backend="eager")
    compiled_prior = torch.compile(prior, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled_model(inputs).reconstruction, model(inputs).reconstruction)
    torch.testing.assert_close(compiled_prior(codes, labels).logits, prior(codes, labels).logits)


def test_eager_mode_keeps_the_value_checks():
    model, prior = tiny_vqvae("image"), tiny_prior("transformer")
    inputs = example_inputs(model, 2)
    inputs[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model(inputs)
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 16\)"):
        model.decode(torch.full((1, 4, 4), 16))
    with pytest.raises(ValueError, match="codes must lie"):
        prior(torch.full((1, 4, 4), 99), torch.tensor([0]))
    with pytest.raises(ValueError, match="class_labels must lie"):
        prior(torch.zeros(1, 4, 4, dtype=torch.long), torch.tensor([7]))


def test_from_config_in_bfloat16_keeps_the_quantizer_in_float32_as_from_pretrained_does(tmp_path):
    from transformers import AutoModel

    config = VQVAEConfig(
        hidden_channels=16, residual_channels=8, num_residual_layers=1, embedding_dim=8, codebook_size=16
    )
    built = AutoModel.from_config(config, dtype=torch.bfloat16)
    assert built.encoder.downsample[0].weight.dtype == torch.bfloat16
    assert {buffer.dtype for buffer in built.quantizer.buffers() if buffer.is_floating_point()} == {
        torch.float32
    }
    built.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert loaded.quantizer.codebook.dtype == built.quantizer.codebook.dtype == torch.float32
    built.train()(
        torch.rand(2, 3, 32, 32, dtype=torch.bfloat16) * 2 - 1
    ).loss.backward()  # trains, as loaded ones do
