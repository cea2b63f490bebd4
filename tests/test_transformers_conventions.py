"""transformers' conventions, each checked on its own: common config names, attention-implementation switching,
initialisation through the meta device, gradient checkpointing on the transformer prior, batching equivalence and
plain loads without warnings. (Export and `from_config` dtypes: test_export.py; lenient loading with its report:
test_reliability.py; `return_dict=False` and `output_hidden_states`: test_modeling_*.py.)"""

import logging
import math
import warnings

import pytest
import torch
from conftest import tiny_config, tiny_inputs

from hf_vqvae import VQPriorConfig, VQPriorModel, VQVAEModel

PRIOR_FIELDS = dict(
    codebook_size=16, code_shape=[4, 4], hidden_size=32, num_layers=3, num_heads=2, num_classes=3
)


def codes_and_labels(batch: int = 4):
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 16, (batch, 4, 4), generator=generator), torch.arange(batch) % 3


def test_the_prior_config_answers_to_transformers_common_names():
    config = VQPriorConfig(**PRIOR_FIELDS)
    assert (config.num_hidden_layers, config.num_attention_heads) == (3, 2)
    config.num_hidden_layers = 5
    assert config.num_layers == 5


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_attn_implementation_reaches_the_gpt2_decoder_and_gives_the_same_logits(tmp_path, implementation):
    VQPriorModel(VQPriorConfig(**PRIOR_FIELDS)).save_pretrained(tmp_path)
    prior = VQPriorModel.from_pretrained(tmp_path, attn_implementation=implementation).eval()
    assert prior.config._attn_implementation == implementation
    assert prior.backbone.decoder.config._attn_implementation == implementation
    other = "sdpa" if implementation == "eager" else "eager"
    reference = VQPriorModel.from_pretrained(tmp_path, attn_implementation=other).eval()
    codes, labels = codes_and_labels()
    with torch.no_grad():
        torch.testing.assert_close(
            prior(codes, labels).logits, reference(codes, labels).logits, rtol=1e-4, atol=1e-5
        )
    prior.set_attn_implementation(other)
    assert prior.backbone.decoder.config._attn_implementation == other


def meta_and_eager(model_class, config):
    torch.manual_seed(0)
    eager = model_class(config)
    with torch.device("meta"):
        meta = model_class(config)
    meta = meta.to_empty(device="cpu")
    meta.init_weights()
    return eager, meta


@pytest.mark.parametrize(
    "build",
    [
        lambda: meta_and_eager(VQVAEModel, tiny_config("image", hidden_channels=64, residual_channels=32)),
        lambda: meta_and_eager(VQPriorModel, VQPriorConfig(**{**PRIOR_FIELDS, "hidden_size": 256})),
        lambda: meta_and_eager(VQPriorModel, VQPriorConfig(**{**PRIOR_FIELDS, "axial_positions": True})),
        lambda: meta_and_eager(
            VQPriorModel, VQPriorConfig(**{**PRIOR_FIELDS, "prior_type": "pixelcnn", "hidden_size": 64})
        ),
    ],
    ids=["vqvae", "transformer-prior", "transformer-prior-axial", "pixelcnn-prior"],
)
def test_initialisation_through_the_meta_device_equals_eager_initialisation(build):
    eager, meta = build()
    eager_tensors = dict(eager.named_parameters()) | dict(eager.named_buffers())
    meta_tensors = dict(meta.named_parameters()) | dict(meta.named_buffers())
    assert eager_tensors.keys() == meta_tensors.keys()
    for name, tensor in meta_tensors.items():
        reference = eager_tensors[name].detach()
        assert tensor.shape == reference.shape and tensor.dtype == reference.dtype, name
        if not tensor.is_floating_point() or bool((reference == reference.flatten()[0]).all()):
            assert torch.equal(tensor, reference), name  # constants: zeros, ones, counters, flags
        elif tensor.numel() < 64:  # a few random draws: the same range
            assert 0 < tensor.abs().max() <= 2 * reference.abs().max(), name
        else:  # random draws: the same distribution
            assert math.isclose(tensor.std().item(), reference.std().item(), rel_tol=0.25), name
            standard_error = reference.std().item() / math.sqrt(tensor.numel())
            assert abs(tensor.mean().item() - reference.mean().item()) < 6 * standard_error + 1e-6, name


def test_gpt2s_scaled_residual_projections_survive_meta_initialisation():
    _, meta = meta_and_eager(VQPriorModel, VQPriorConfig(**{**PRIOR_FIELDS, "hidden_size": 256}))
    expected = 0.02 / math.sqrt(2 * PRIOR_FIELDS["num_layers"])
    for block in meta.backbone.decoder.h:
        for projection in (block.attn.c_proj, block.mlp.c_proj):
            assert math.isclose(projection.weight.std().item(), expected, rel_tol=0.1)


def test_gradient_checkpointing_gives_the_transformer_prior_the_same_gradients():
    torch.manual_seed(0)
    prior = VQPriorModel(VQPriorConfig(**PRIOR_FIELDS)).train()
    codes, labels = codes_and_labels()

    def gradients():
        prior.zero_grad()
        prior(codes, labels).loss.backward()
        return {name: p.grad.clone() for name, p in prior.named_parameters() if p.grad is not None}

    plain = gradients()
    prior.activation_checkpointing_enable()  # transformers 5's name for gradient checkpointing
    assert prior.is_activation_checkpointing
    checkpointed = gradients()
    assert plain.keys() == checkpointed.keys() and plain
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("modality", ["image", "audio", "video"])
def test_a_batch_gives_what_its_examples_give_one_by_one(modality):
    model = VQVAEModel(tiny_config(modality)).eval()
    inputs = tiny_inputs(modality)
    with torch.no_grad():
        batched = model.encode(inputs)
        single = [model.encode(x[None]) for x in inputs]
        assert torch.equal(batched.codes, torch.cat([s.codes for s in single]))
        decoded = model.decode(batched.codes)
        one_by_one = torch.cat([model.decode(s.codes) for s in single])
    torch.testing.assert_close(decoded, one_by_one, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prior_type", ["transformer", "pixelcnn"])
def test_a_prior_batch_gives_what_its_examples_give_one_by_one(prior_type):
    prior = VQPriorModel(VQPriorConfig(**{**PRIOR_FIELDS, "prior_type": prior_type})).eval()
    codes, labels = codes_and_labels()
    with torch.no_grad():
        batched = prior(codes, labels).logits
        one_by_one = torch.cat([prior(codes[i : i + 1], labels[i : i + 1]).logits for i in range(len(codes))])
    torch.testing.assert_close(batched, one_by_one, rtol=1e-5, atol=1e-5)


def test_a_plain_load_warns_about_nothing(tmp_path, caplog):
    VQVAEModel(tiny_config("image")).save_pretrained(tmp_path / "model")
    VQPriorModel(VQPriorConfig(**PRIOR_FIELDS)).save_pretrained(tmp_path / "model" / "prior")
    transformers_logger = logging.getLogger("transformers")
    transformers_logger.addHandler(caplog.handler)  # transformers' loggers do not propagate to the root
    try:
        with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
            warnings.simplefilter("always")
            VQVAEModel.from_pretrained(tmp_path / "model")
            VQPriorModel.from_pretrained(tmp_path / "model", subfolder="prior")
    finally:
        transformers_logger.removeHandler(caplog.handler)
    assert [str(w.message) for w in caught] == []
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []
