"""Tests of VQPriorModel with the transformer backbone: loss, causality, class conditioning, KV cache,
sampling options, save/load and input errors, on grids of 1, 2 and 3 axes."""

import math
import os

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel

from hf_vqvae.evaluation.metrics import bits_per_code
from hf_vqvae.models.prior.configuration_prior import VQPriorConfig
from hf_vqvae.models.prior.modeling_prior import VQPriorModel, VQPriorOutput, sample_codes
from hf_vqvae.models.prior.pixelcnn_backbone import GatedPixelCNNPrior
from hf_vqvae.models.prior.transformer_backbone import TransformerPrior

K = 16
CODE_SHAPES = [[4, 4], [12], [2, 3, 3]]
NUM_CLASSES = 3


def tiny_prior(code_shape=(4, 4), **overrides) -> VQPriorModel:
    """A 2-layer, 32-wide transformer prior over K=16 codes, in eval mode. Weights at std 0.2 rather than
    0.02 so that every code visibly moves the logits of the later positions."""
    fields = dict(
        codebook_size=K,
        code_shape=list(code_shape),
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        initializer_range=0.2,
    )
    return VQPriorModel(VQPriorConfig(**{**fields, **overrides})).eval()


def random_codes(code_shape, batch_size: int = 3, seed: int = 0) -> torch.LongTensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, K, (batch_size, *code_shape), generator=generator)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def flat_logits(model: VQPriorModel, codes: torch.Tensor, class_labels=None) -> torch.Tensor:
    """(batch, num_codes, K) logits in raster order."""
    return model(codes, class_labels).logits.reshape(len(codes), -1, K)


def record_sampling(model: VQPriorModel, use_cache: bool, class_labels=None, seed: int = 0):
    """Samples 3 grids through the backbone interface, recording the logits it hands to `sample_next`.

    Returns:
        `(codes (3, *code_shape), logits (3, num_codes, K))`.
    """
    generator, recorded = seeded(seed), []

    def sample_next(logits):
        recorded.append(logits)
        return sample_codes(logits, [], generator)

    codes = model.backbone.sample(3, class_labels, sample_next, use_cache, None)
    return codes, torch.stack(recorded, dim=1)


# ---- forward


@pytest.mark.parametrize("code_shape", CODE_SHAPES)
def test_forward_shapes_and_loss_is_cross_entropy(code_shape):
    model = tiny_prior(code_shape)
    codes = random_codes(code_shape)
    output = model(codes)
    assert isinstance(output, VQPriorOutput)
    assert isinstance(model.backbone, TransformerPrior)
    assert output.logits.shape == (3, *code_shape, K)
    log_probabilities = output.logits.reshape(-1, K).log_softmax(dim=-1)
    nll = -log_probabilities.gather(1, codes.reshape(-1, 1)).mean()
    torch.testing.assert_close(output.loss, nll)


def test_narrow_integer_inputs_give_the_same_output():
    model = tiny_prior(num_classes=NUM_CLASSES)
    codes, labels = random_codes([4, 4]), torch.tensor([2, 0, 1])
    narrow = model(codes.to(torch.int32), labels.to(torch.int32))
    torch.testing.assert_close(narrow.logits, model(codes, labels).logits)


def test_uniform_prior_costs_log2_k_bits_per_code():
    model = tiny_prior()
    torch.nn.init.zeros_(model.backbone.head.weight)
    torch.nn.init.zeros_(model.backbone.head.bias)
    loss = model(random_codes([4, 4])).loss
    torch.testing.assert_close(loss, torch.tensor(math.log(K)))
    assert bits_per_code(loss.item()) == pytest.approx(4.0)


def test_loss_backpropagates_to_every_parameter():
    model = tiny_prior(num_classes=NUM_CLASSES).train()
    model(random_codes([4, 4]), torch.tensor([0, 1, 2])).loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("code_shape", CODE_SHAPES)
def test_causality_in_raster_order(code_shape):
    """Changing the code at position p leaves the logits at positions <= p unchanged, and changes those at
    every later position."""
    model = tiny_prior(code_shape)
    codes = random_codes(code_shape)
    reference = flat_logits(model, codes)
    num_codes = reference.shape[1]
    for position in range(num_codes):
        changed = codes.reshape(3, -1).clone()
        changed[:, position] = (changed[:, position] + 1) % K
        logits = flat_logits(model, changed.view_as(codes))
        torch.testing.assert_close(logits[:, : position + 1], reference[:, : position + 1])
        moved = (logits - reference).abs().amax(dim=(0, 2))[position + 1 :]
        assert (moved > 1e-4).all(), f"a code at {position} does not reach the later positions: {moved}"


def test_class_labels_change_every_position():
    model = tiny_prior(num_classes=NUM_CLASSES)
    codes = random_codes([4, 4]).expand(NUM_CLASSES, -1, -1)
    logits = flat_logits(model, codes, torch.arange(NUM_CLASSES))
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        assert ((logits[a] - logits[b]).abs().amax(dim=-1) > 1e-4).all()


def test_init_weights():
    model = tiny_prior(initializer_range=0.02)
    head = model.backbone.head
    assert head.weight.std().item() == pytest.approx(0.02, rel=0.2)
    assert head.bias.abs().max() == 0
    assert (model.backbone.decoder.ln_f.weight == 1).all()


# ---- sampling


@pytest.mark.parametrize("code_shape", CODE_SHAPES)
def test_cache_gives_the_same_logits_and_samples(code_shape):
    model = tiny_prior(code_shape, num_classes=NUM_CLASSES)
    labels = torch.tensor([2, 0, 1])
    cached_codes, cached_logits = record_sampling(model, use_cache=True, class_labels=labels)
    codes, logits = record_sampling(model, use_cache=False, class_labels=labels)
    torch.testing.assert_close(cached_logits, logits)
    assert torch.equal(cached_codes, codes)
    # And the sampler's logits are the ones forward gives on the sampled grids.
    torch.testing.assert_close(logits, flat_logits(model, codes, labels))


def test_backbone_reports_progress_once_per_code():
    model = tiny_prior([12])
    steps = []
    model.backbone.sample(2, None, lambda logits: logits.argmax(-1), True, lambda: steps.append(1))
    assert len(steps) == 12


@pytest.mark.parametrize("code_shape", CODE_SHAPES)
def test_generate_shapes_dtype_range(code_shape):
    codes = tiny_prior(code_shape).generate(5, generator=seeded())
    assert codes.shape == (5, *code_shape)
    assert codes.dtype == torch.long
    assert 0 <= codes.min() and codes.max() < K


def test_generate_is_deterministic_under_a_seed():
    model = tiny_prior()
    first = model.generate(4, generator=seeded(1))
    assert torch.equal(first, model.generate(4, generator=seeded(1)))
    assert not torch.equal(first, model.generate(4, generator=seeded(2)))
    assert torch.equal(first, model.generate(4, generator=seeded(1), use_cache=False, show_progress_bar=True))


def test_generate_class_labels_as_int_list_or_tensor():
    model = tiny_prior(num_classes=NUM_CLASSES)
    as_int = model.generate(3, class_labels=2, generator=seeded())
    assert torch.equal(as_int, model.generate(3, class_labels=[2, 2, 2], generator=seeded()))
    assert torch.equal(as_int, model.generate(3, class_labels=torch.tensor([2, 2, 2]), generator=seeded()))
    assert not torch.equal(as_int, model.generate(3, class_labels=0, generator=seeded()))


@pytest.mark.parametrize("option", [{"top_k": 1}, {"top_p": 1e-6}, {"temperature": 1e-4}])
def test_greedy_limits(option):
    """top_k=1, a tiny top_p and a tiny temperature all pick the most likely code at every step."""
    model = tiny_prior(num_classes=NUM_CLASSES)
    labels = torch.tensor([0, 1, 2])
    codes = model.generate(3, class_labels=labels, generator=seeded(), **option)
    assert torch.equal(codes, model(codes, labels).logits.argmax(dim=-1))


def test_top_k_keeps_samples_among_the_k_most_likely():
    model = tiny_prior()
    codes = model.generate(8, top_k=3, generator=seeded())
    ranks = (model(codes).logits > model(codes).logits.gather(-1, codes[..., None])).sum(dim=-1)
    assert ranks.max() < 3 and ranks.max() > 0


def test_generate_samples_in_eval_mode_and_restores_training():
    model = tiny_prior(dropout=0.5)
    reference = model.generate(2, generator=seeded())
    model.train()
    assert torch.equal(model.generate(2, generator=seeded()), reference)
    assert model.training


# ---- augmentation labels (non-leaking augmentation)


def test_augment_labels_start_at_zero_and_zero_labels_change_nothing():
    model = tiny_prior(num_classes=NUM_CLASSES, augment_dim=4)
    codes, labels = random_codes([4, 4]), torch.tensor([0, 1, 2])
    one_hot = torch.eye(4)[:3]
    reference = model(codes, labels).logits
    assert torch.equal(model(codes, labels, one_hot).logits, reference)  # zero-initialised embedding
    with torch.no_grad():
        model.backbone.augment_embedding.weight.normal_(generator=seeded())
    assert torch.equal(model(codes, labels, torch.zeros(3, 4)).logits, reference)
    assert not torch.allclose(model(codes, labels, one_hot).logits[:, 0, 0], reference[:, 0, 0])


def test_augment_labels_train_with_the_prior_and_survive_save_pretrained(tmp_path):
    model = tiny_prior(augment_dim=2).train()
    codes, augment_labels = random_codes([4, 4]), torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    model(codes, augment_labels=augment_labels).loss.backward()
    assert model.backbone.augment_embedding.weight.grad.abs().sum() > 0
    with torch.no_grad():
        model.backbone.augment_embedding.weight.normal_(generator=seeded())
    model.eval().save_pretrained(tmp_path)
    loaded = VQPriorModel.from_pretrained(tmp_path)
    assert loaded.config.augment_dim == 2
    expected = model(codes, augment_labels=augment_labels).logits
    torch.testing.assert_close(loaded(codes, augment_labels=augment_labels).logits, expected, rtol=0, atol=0)


@pytest.mark.parametrize(
    "augment_dim, augment_labels, error, match",
    [
        (0, torch.zeros(2, 3), ValueError, r"no augmentation labels \(config.augment_dim=0\)"),
        (3, torch.zeros(2, 3, dtype=torch.long), TypeError, "floating-point"),
        (3, torch.zeros(2, 4), ValueError, r"shape \(2, 3\).*got \(2, 4\)"),
    ],
)
def test_forward_rejects_bad_augment_labels(augment_dim, augment_labels, error, match):
    with pytest.raises(error, match=match):
        tiny_prior(augment_dim=augment_dim)(random_codes([4, 4], batch_size=2), augment_labels=augment_labels)


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"augment_dim": -1}, "augment_dim must be an integer >= 0"),
        ({"augment_dim": 2, "prior_type": "pixelcnn"}, "only prior_type='transformer'"),
    ],
)
def test_config_rejects_augment_labels_it_cannot_take(fields, match):
    with pytest.raises(ValueError, match=match):
        VQPriorConfig(codebook_size=K, code_shape=[4, 4], **fields)


# ---- save / load


def test_save_pretrained_roundtrip(tmp_path):
    AutoConfig.register(VQPriorConfig.model_type, VQPriorConfig, exist_ok=True)
    AutoModel.register(VQPriorConfig, VQPriorModel, exist_ok=True)
    model = tiny_prior([2, 3, 3], num_classes=NUM_CLASSES)
    model.save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert "model.safetensors" in files
    assert not files & {"pytorch_model.bin", "model.pt", "model.pkl"}
    codes, labels = random_codes([2, 3, 3]), torch.tensor([1, 0, 2])
    expected = model(codes, labels).logits
    for loader in (VQPriorModel, AutoModel):
        loaded = loader.from_pretrained(tmp_path)
        assert isinstance(loaded, VQPriorModel)
        assert loaded.config.code_shape == [2, 3, 3] and loaded.config.num_classes == NUM_CLASSES
        torch.testing.assert_close(loaded(codes, labels).logits, expected, rtol=0, atol=0)


def test_pixelcnn_prior_type_dispatches_to_the_gated_pixelcnn():
    model = VQPriorModel(
        VQPriorConfig(prior_type="pixelcnn", codebook_size=K, code_shape=[4, 4], hidden_size=8, num_layers=2)
    )
    assert isinstance(model.backbone, GatedPixelCNNPrior)
    assert model(random_codes([4, 4])).logits.shape == (3, 4, 4, K)
    assert model.generate(2, generator=seeded()).shape == (2, 4, 4)


# ---- errors


@pytest.mark.parametrize(
    "codes, error, match",
    [
        (torch.zeros(2, 4, 4), TypeError, "integer code indices"),
        (torch.zeros(2, 4, 4, dtype=torch.bool), TypeError, "integer code indices"),
        ([[0] * 4] * 4, TypeError, "torch.LongTensor"),
        (torch.zeros(2, 4, 5, dtype=torch.long), ValueError, r"shape \(batch, 4, 4\).*got \(2, 4, 5\)"),
        (torch.zeros(4, 4, dtype=torch.long), ValueError, r"shape \(batch, 4, 4\)"),
        (torch.zeros(0, 4, 4, dtype=torch.long), ValueError, "batch >= 1"),
        (torch.full((2, 4, 4), K), ValueError, r"\[0, 16\).*\[16, 16\]"),
        (torch.full((2, 4, 4), -1), ValueError, r"\[0, 16\).*\[-1, -1\]"),
    ],
)
def test_forward_rejects_bad_codes(codes, error, match):
    with pytest.raises(error, match=match):
        tiny_prior()(codes)


@pytest.mark.parametrize(
    "num_classes, labels, error, match",
    [
        (0, torch.tensor([0, 1]), ValueError, "unconditional"),
        (NUM_CLASSES, None, ValueError, "class-conditional.*required"),
        (NUM_CLASSES, torch.tensor([0, 3]), ValueError, r"\[0, 3\).*got \[0, 3\]"),
        (NUM_CLASSES, torch.tensor([-1, 0]), ValueError, r"\[0, 3\)"),
        (NUM_CLASSES, torch.tensor([0, 1, 2]), ValueError, r"shape \(2,\)"),
        (NUM_CLASSES, torch.tensor([0.0, 1.0]), TypeError, "integer"),
        (NUM_CLASSES, [0, 1], TypeError, "integer"),
    ],
)
def test_forward_rejects_bad_class_labels(num_classes, labels, error, match):
    with pytest.raises(error, match=match):
        tiny_prior(num_classes=num_classes)(random_codes([4, 4], batch_size=2), labels)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_samples": 0}, ValueError, "num_samples"),
        ({"num_samples": 2.0}, ValueError, "num_samples"),
        ({"temperature": 0.0}, ValueError, "temperature must be a number > 0"),
        ({"temperature": -1.0}, ValueError, "temperature must be a number > 0"),
        ({"temperature": float("inf")}, ValueError, "temperature must be a number > 0"),
        ({"temperature": True}, ValueError, "temperature must be a number > 0"),
        ({"top_p": "0.9"}, ValueError, r"top_p must be None or in \(0, 1\]"),
        ({"top_k": 0}, ValueError, "top_k"),
        ({"top_p": 0.0}, ValueError, r"top_p must be None or in \(0, 1\]"),
        ({"top_p": 1.5}, ValueError, r"top_p must be None or in \(0, 1\]"),
        ({"class_labels": None}, ValueError, "class-conditional"),
        ({"class_labels": 3}, ValueError, r"\[0, 3\)"),
        ({"class_labels": [0, 1, 2]}, ValueError, r"shape \(2,\)"),
        ({"class_labels": ["cat", "dog"]}, TypeError, "list of ints"),
        ({"class_labels": 1.0}, TypeError, "list of ints"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs, error, match):
    model = tiny_prior(num_classes=NUM_CLASSES)
    with pytest.raises(error, match=match):
        model.generate(**{"num_samples": 2, "class_labels": 0, **kwargs})


def test_generate_takes_numpy_and_integer_sampling_arguments():
    model = tiny_prior()
    generator = torch.Generator().manual_seed(0)
    expected = model.generate(2, temperature=2.0, top_k=3, top_p=0.5, generator=generator)
    generator.manual_seed(0)
    codes = model.generate(2, temperature=2, top_k=np.int64(3), top_p=np.float32(0.5), generator=generator)
    assert torch.equal(codes, expected)


def test_generate_rejects_labels_for_an_unconditional_prior():
    with pytest.raises(ValueError, match="unconditional"):
        tiny_prior().generate(2, class_labels=0)


def test_forward_returns_a_tuple_when_asked():
    prior = tiny_prior()
    codes = torch.randint(0, K, (2, 4, 4), generator=torch.Generator().manual_seed(0))
    loss, logits = prior(codes, return_dict=False)
    torch.testing.assert_close(loss, prior(codes).loss)
    assert logits.shape == (2, 4, 4, K)


@pytest.mark.parametrize("prior_type", ["transformer", "pixelcnn"])
def test_output_hidden_states_returns_the_input_and_every_layer(prior_type):
    config = VQPriorConfig(
        prior_type=prior_type, hidden_size=32, num_layers=2, num_heads=2, code_shape=[4, 4], codebook_size=16
    )
    prior = VQPriorModel(config).eval()
    codes = torch.randint(0, 16, (3, 4, 4))
    plain, with_states = prior(codes), prior(codes, output_hidden_states=True)
    assert plain.hidden_states is None
    assert torch.equal(plain.logits, with_states.logits)
    assert len(with_states.hidden_states) == config.num_layers + 1
    expected = (3, 16, 32) if prior_type == "transformer" else (3, 32, 4, 4)
    assert all(tuple(state.shape) == expected for state in with_states.hidden_states)
    # From the config, as transformers' models read it, and in the tuple output.
    prior.config.output_hidden_states = True
    assert len(prior(codes, return_dict=False)) == 3


def test_compiled_sampling_draws_the_same_codes_as_the_cached_sampler():
    """`generate(compile=True)`: a static key/value cache and a compiled step, with guidance (constant or
    scheduled) and a prompt, give the eager sampler's codes for the same seed; later runs reuse the compiled step."""
    prior = tiny_prior(num_classes=3, condition_dropout=0.1)
    labels, prompt = [0, 1, 2], torch.tensor([[3, 5, 7]])
    scheduled = {"guidance_scale": 6.0, "guidance_schedule": "cosine", "prompt_codes": prompt}
    for options in ({"guidance_scale": 1.0}, {"guidance_scale": 2.0, "prompt_codes": prompt}, scheduled):
        expected = prior.generate(3, labels, generator=torch.Generator().manual_seed(1), **options)
        compiled = prior.generate(
            3, labels, generator=torch.Generator().manual_seed(1), compile=True, **options
        )
        assert torch.equal(compiled, expected), options
    assert len(prior.backbone._static_steps) == 2  # batch 3 unguided, 6 guided: one compiled step each


def test_compiled_sampling_runs_eager_past_the_recompile_limit(caplog):
    """Each prior and batch size compiles its own program; once torch.compile refuses more (its recompile limit,
    0 here), sampling goes on without compiling, with a warning and the same codes."""
    prior = tiny_prior()
    expected = prior.generate(2, generator=seeded(3))
    with torch._dynamo.config.patch(recompile_limit=0), caplog.at_level("WARNING"):
        assert torch.equal(prior.generate(2, generator=seeded(3), compile=True), expected)
    assert "recompile limit is reached" in caplog.text
    assert torch.equal(prior.generate(2, generator=seeded(3), compile=True), expected)  # stays eager


def test_compiled_sampling_needs_the_transformer_prior_and_its_cache():
    with pytest.raises(ValueError, match="compile=True samples through a static key/value cache"):
        tiny_prior(prior_type="pixelcnn").generate(1, compile=True)
    with pytest.raises(ValueError, match="use_cache=False"):
        tiny_prior().generate(1, use_cache=False, compile=True)
