"""Classifier-free guidance: condition dropout and the "no label", `add_null_label`, the guided sampler (learned
"no label" and class-mixture fallback) against hand-computed guided logits, its cache, the generation config
default, the pipeline, the CLI flag and train_prior.py's --condition_dropout; for both backbones."""

import json
from functools import partial

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import load_script
from test_cli import run_failing
from test_pipeline import quiet, save_pipeline_folder, stack, tiny_vqvae
from test_pipeline import tiny_prior as pipeline_prior
from test_training_scripts import (  # noqa: F401  (trained_pipeline_dir is a fixture)
    TRAIN_PRIOR,
    fine_tuning,
    one_step_prior_args,
    trained_pipeline_dir,
)
from transformers import AutoModel, pipeline

from hf_vqvae import VQPriorConfig, VQPriorModel
from hf_vqvae.cli import main
from hf_vqvae.models.prior.guidance import guided_batch, scheduled_scales
from hf_vqvae.models.prior.modeling_prior import sample_codes
from hf_vqvae.pipelines.outputs import postprocess_samples

K = 16
NUM_CLASSES = 3
PRIOR_TYPES = ["transformer", "pixelcnn"]
# Where the unconditional distribution comes from: a learned "no label" (2 passes), or the mixture of the classes.
MODES = ["null_label", "class_mixture"]
LABELS = torch.tensor([0, 1, 2, 0])


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny_prior(
    prior_type="transformer", code_shape=(4, 4), num_classes=NUM_CLASSES, **overrides
) -> VQPriorModel:
    """A 2-layer, 32-wide prior over K=16 codes, in eval mode."""
    fields = dict(
        prior_type=prior_type,
        codebook_size=K,
        code_shape=list(code_shape),
        num_classes=num_classes,
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        initializer_range=0.2,
    )
    torch.manual_seed(0)
    return VQPriorModel(VQPriorConfig(**{**fields, **overrides})).eval()


def label_weights(model: VQPriorModel) -> list[torch.Tensor]:
    """The weights whose rows embed the labels (the "no label" last): the transformer's start tokens, every
    PixelCNN layer's class biases."""
    if model.config.prior_type == "transformer":
        return [model.backbone.decoder.wte.weight[K:]]
    return [layer.class_bias.weight for layer in model.backbone.layers]


def label_grads(model: VQPriorModel) -> list[torch.Tensor]:
    """The gradients of the rows of `label_weights`."""
    if model.config.prior_type == "transformer":
        return [model.backbone.decoder.wte.weight.grad[K:]]
    return [layer.class_bias.weight.grad for layer in model.backbone.layers]


def distinct_prior(prior_type="transformer", mode="null_label", code_shape=(4, 4)) -> VQPriorModel:
    """A prior whose classes (and "no label") really differ: every label's embedding redrawn at std 2, and the
    PixelCNN's output layer scaled up (its fan-in init gives nearly uniform logits otherwise)."""
    condition_dropout = 0.1 if mode == "null_label" else 0.0
    model = tiny_prior(prior_type, code_shape, condition_dropout=condition_dropout)
    generator = seeded(1)
    with torch.no_grad():
        for weight in label_weights(model):
            weight.normal_(0, 2.0, generator=generator)
        if prior_type == "pixelcnn":
            model.backbone.head[-1].weight.mul_(10)
    return model


def random_codes(batch_size: int = 4, code_shape=(4, 4), seed: int = 0) -> torch.LongTensor:
    return torch.randint(0, K, (batch_size, *code_shape), generator=seeded(seed))


def flat_logits(model: VQPriorModel, codes: torch.Tensor, class_labels: torch.Tensor) -> torch.Tensor:
    """(batch, num_codes, K) full-forward logits in raster order."""
    with torch.no_grad():
        return model(codes, class_labels).logits.reshape(len(codes), -1, K)


def unguided_codes(model: VQPriorModel, class_labels: torch.Tensor, seed: int = 0) -> torch.LongTensor:
    """The backbone's own sampler, without any guidance code in the way."""
    sample_next = partial(sample_codes, warpers=[], generator=seeded(seed))
    return model.backbone.sample(len(class_labels), class_labels, sample_next, True, None)


def unconditional_log_probs(model: VQPriorModel, codes: torch.Tensor) -> torch.Tensor:
    """(batch, num_codes, K) by hand: the "no label"'s log-probabilities, or the log of the mean over the classes
    of their probabilities."""
    batch_size = len(codes)
    if model.config.null_label_id is not None:
        null = torch.full((batch_size,), model.config.null_label_id)
        return flat_logits(model, codes, null).log_softmax(-1)
    probabilities = [
        flat_logits(model, codes, torch.full((batch_size,), label)).softmax(-1)
        for label in range(NUM_CLASSES)
    ]
    return torch.stack(probabilities).mean(dim=0).log()


def hand_guided_log_probs(model, codes, class_labels, scale) -> torch.Tensor:
    """(batch, num_codes, K): `uncond + scale * (cond - uncond)` of the log-probabilities (up to a constant per
    row, which sampling ignores)."""
    conditional = flat_logits(model, codes, class_labels).log_softmax(-1)
    unconditional = unconditional_log_probs(model, codes)
    return unconditional + scale * (conditional - unconditional)


def record_batch_sizes(model: VQPriorModel, monkeypatch) -> list[int]:
    """The batch sizes the backbone's sampler is run with, appended at each call."""
    sizes, sample = [], model.backbone.sample

    def recording_sample(batch_size, *args, **kwargs):
        sizes.append(batch_size)
        return sample(batch_size, *args, **kwargs)

    monkeypatch.setattr(model.backbone, "sample", recording_sample)
    return sizes


# ---- guidance_scale=1 is unguided sampling


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("mode", MODES)
def test_guidance_scale_1_samples_exactly_as_unguided_sampling(prior_type, mode, monkeypatch):
    model = distinct_prior(prior_type, mode)
    reference = unguided_codes(model, LABELS)
    sizes = record_batch_sizes(model, monkeypatch)
    for scale in (None, 1, 1.0, np.float64(1.0)):
        assert torch.equal(model.generate(4, LABELS, guidance_scale=scale, generator=seeded()), reference)
    assert sizes == [4] * 4  # no extra pass
    guided = model.generate(4, LABELS, guidance_scale=3.0, generator=seeded())
    assert sizes[-1] == 4 * (2 if mode == "null_label" else NUM_CLASSES)
    assert not torch.equal(guided, reference)


# ---- the guided distribution


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scale", [0.0, 0.5, 3.0])
def test_combine_gives_the_guided_logits_of_the_first_position(prior_type, mode, scale):
    model = distinct_prior(prior_type, mode)
    labels = torch.tensor([2, 0, 1, 2])
    codes = random_codes()
    guided = guided_batch(labels, model.config)
    num_passes = 2 if mode == "null_label" else NUM_CLASSES
    assert guided.num_passes == num_passes and guided.class_labels.shape == (num_passes * 4,)
    # The sampler feeds every pass the same codes.
    logits = flat_logits(model, codes.repeat(num_passes, 1, 1), guided.class_labels)[:, 0]
    combined = guided.combine(logits, scale)
    assert combined.shape == (4, K)

    conditional = flat_logits(model, codes, labels)[:, 0]
    if mode == "null_label":
        unconditional = flat_logits(model, codes, torch.full((4,), NUM_CLASSES))[:, 0]
        torch.testing.assert_close(combined, unconditional + scale * (conditional - unconditional))
        if scale == 0:
            torch.testing.assert_close(combined, unconditional)
    else:
        every_class = torch.stack([flat_logits(model, codes, torch.full((4,), c))[:, 0] for c in range(3)])
        unconditional = every_class.softmax(-1).mean(dim=0).log()
        conditional = conditional.log_softmax(-1)
        torch.testing.assert_close(combined, unconditional + scale * (conditional - unconditional))
    if scale != 1:  # the classes really differ, so guidance moves the distribution
        assert (combined.log_softmax(-1) - conditional.log_softmax(-1)).abs().max() > 0.1


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("mode", MODES)
def test_greedy_guided_samples_take_the_top_code_of_the_guided_logits_everywhere(prior_type, mode):
    """top_k=1 follows the argmax of the guided distribution at every position, as computed by hand from full
    forwards on the sampled grids."""
    model = distinct_prior(prior_type, mode)
    codes = model.generate(4, LABELS, top_k=1, guidance_scale=2.5)
    expected = hand_guided_log_probs(model, codes, LABELS, 2.5).argmax(dim=-1)
    assert torch.equal(codes.flatten(1), expected)
    assert not torch.equal(codes, model.generate(4, LABELS, top_k=1))


# ---- guidance schedules


def test_scheduled_scales_rise_from_0_to_the_scale_over_the_grid():
    assert scheduled_scales(3.0, "constant", 4) == [3.0] * 4
    assert scheduled_scales(3.0, "linear", 4) == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert scheduled_scales(4.0, "cosine", 5) == pytest.approx([0.0, 2 - 2**0.5, 2.0, 2 + 2**0.5, 4.0])
    assert scheduled_scales(3.0, "linear", 4, first_code=2) == pytest.approx([2.0, 3.0])  # after a prompt
    assert scheduled_scales(3.0, "cosine", 1) == [3.0]  # a one-code grid: its only code is its last


def scheduled_hand_guided_log_probs(model, codes, class_labels, scale, schedule) -> torch.Tensor:
    """`hand_guided_log_probs` with each position's scale of `schedule`."""
    scales = torch.tensor(scheduled_scales(scale, schedule, model.config.num_codes))[:, None]
    return hand_guided_log_probs(model, codes, class_labels, scales)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_greedy_scheduled_guidance_takes_the_top_code_of_each_positions_guided_logits(
    prior_type, mode, schedule
):
    model = distinct_prior(prior_type, mode)
    codes = model.generate(4, LABELS, top_k=1, guidance_scale=5.0, guidance_schedule=schedule)
    expected = scheduled_hand_guided_log_probs(model, codes, LABELS, 5.0, schedule).argmax(dim=-1)
    assert torch.equal(codes.flatten(1), expected)
    assert not torch.equal(codes, model.generate(4, LABELS, top_k=1, guidance_scale=5.0))


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_a_schedule_continues_a_prompt_at_the_prompts_end(prior_type, schedule):
    model = distinct_prior(prior_type, "null_label")
    prompt = random_codes()[:1].flatten(1)[:, :5]
    codes = model.generate(
        4, LABELS, top_k=1, guidance_scale=5.0, guidance_schedule=schedule, prompt_codes=prompt
    )
    assert torch.equal(codes.flatten(1)[:, :5], prompt.expand(4, -1))
    expected = scheduled_hand_guided_log_probs(model, codes, LABELS, 5.0, schedule).argmax(dim=-1)
    assert torch.equal(codes.flatten(1)[:, 5:], expected[:, 5:])


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_a_schedule_at_scale_1_still_guides_and_constant_1_does_not(prior_type, monkeypatch):
    model = distinct_prior(prior_type, "null_label")
    sizes = record_batch_sizes(model, monkeypatch)
    model.generate(4, LABELS, guidance_scale=1.0, guidance_schedule="constant")
    model.generate(4, LABELS, guidance_scale=1.0, guidance_schedule="linear")
    assert sizes == [4, 8]


def test_choosing_codes_for_compression_ignores_a_saved_schedule():
    """`generate_with` (the entropy coder's sampler) codes at the scale it is given, constant, whatever defaults the
    prior saves for sampling: compressed files must not depend on them."""
    model = distinct_prior("transformer", "null_label")
    codes = random_codes().flatten(1)
    position = iter(range(model.config.num_codes))

    def choose_next(logits: torch.FloatTensor) -> torch.LongTensor:
        return codes[:, next(position)]

    before = model.generate_with(choose_next, 4, LABELS, guidance_scale=1.0)
    model.generation_config.guidance_scale = 12.0
    model.generation_config.guidance_schedule = "cosine"
    position = iter(range(model.config.num_codes))
    seen = []

    def recording_choose_next(logits: torch.FloatTensor) -> torch.LongTensor:
        seen.append(logits)
        return codes[:, next(position)]

    assert torch.equal(model.generate_with(recording_choose_next, 4, LABELS, guidance_scale=1.0), before)
    conditional = flat_logits(model, codes.view(4, 4, 4), LABELS)
    torch.testing.assert_close(torch.stack(seen, dim=1), conditional)


def test_a_schedule_without_any_scale_is_refused():
    with pytest.raises(
        ValueError, match="guidance_schedule='cosine' spreads a guidance_scale .* pass guidance_scale"
    ):
        distinct_prior().generate(2, 0, guidance_schedule="cosine")


def test_bad_guidance_schedules_are_named():
    with pytest.raises(
        ValueError, match=r"guidance_schedule must be one of \('constant', 'linear', 'cosine'\), got 'ramp'"
    ):
        distinct_prior().generate(2, 0, guidance_schedule="ramp")
    with pytest.raises(ValueError, match="guidance_schedule='linear' schedules .* unconditional"):
        tiny_prior(num_classes=0).generate(2, guidance_schedule="linear")


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_scale_0_samples_the_no_label_distribution_whatever_the_class(prior_type):
    model = distinct_prior(prior_type, "null_label")
    reference = unguided_codes(model, torch.full((4,), model.config.null_label_id))
    for label in range(NUM_CLASSES):
        assert torch.equal(model.generate(4, label, guidance_scale=0, generator=seeded()), reference)
    assert not torch.equal(unguided_codes(model, torch.zeros(4, dtype=torch.long)), reference)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_scale_0_of_the_class_mixture_does_not_depend_on_the_class(prior_type):
    model = distinct_prior(prior_type, "class_mixture")
    reference = model.generate(4, 0, guidance_scale=0, generator=seeded())
    for label in (1, 2):
        assert torch.equal(model.generate(4, label, guidance_scale=0, generator=seeded()), reference)
    assert not torch.equal(model.generate(4, 1, generator=seeded()), model.generate(4, 0, generator=seeded()))


@pytest.mark.parametrize(
    ("prior_type", "code_shape"), [("transformer", (4, 4)), ("transformer", (6,)), ("pixelcnn", (4, 4))]
)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("scale", "schedule"), [(0.0, "constant"), (3.0, "constant"), (6.0, "cosine")])
def test_guided_sampling_with_the_cache_equals_sampling_without(
    prior_type, code_shape, mode, scale, schedule
):
    model = distinct_prior(prior_type, mode, code_shape)
    kwargs = {"guidance_scale": scale, "guidance_schedule": schedule}
    cached = model.generate(4, LABELS, generator=seeded(3), **kwargs)
    uncached = model.generate(4, LABELS, generator=seeded(3), use_cache=False, **kwargs)
    assert torch.equal(cached, uncached)
    assert cached.shape == (4, *code_shape)


def class_typicality(model: VQPriorModel, codes: torch.Tensor, class_labels: torch.Tensor) -> torch.Tensor:
    """(batch,) mean over positions of log p(code | class) - log p_uncond(code)."""
    index = codes.flatten(1)[..., None]
    conditional = flat_logits(model, codes, class_labels).log_softmax(-1).gather(-1, index)
    unconditional = unconditional_log_probs(model, codes).gather(-1, index)
    return (conditional - unconditional)[..., 0].mean(dim=1)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("mode", MODES)
def test_a_large_guidance_scale_makes_samples_more_typical_of_their_class(prior_type, mode):
    model = distinct_prior(prior_type, mode)
    labels = torch.arange(NUM_CLASSES).repeat_interleave(20)
    typicality = {
        scale: class_typicality(
            model, model.generate(60, labels, guidance_scale=scale, generator=seeded()), labels
        )
        for scale in (1.0, 4.0)
    }
    gain = typicality[4.0].mean() - typicality[1.0].mean()
    standard_error = (typicality[4.0].var() / 60 + typicality[1.0].var() / 60).sqrt()
    # Measured: gains of 0.12-0.70 nats per code, 7-25 standard errors.
    assert gain > 0.05 and gain > 4 * standard_error, (gain, standard_error)


# ---- add_null_label


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_add_null_label_keeps_every_class_and_adds_their_mean(prior_type, tmp_path):
    model = tiny_prior(prior_type)
    codes, labels = random_codes(6), torch.tensor([0, 1, 2, 2, 1, 0])
    before = flat_logits(model, codes, labels)
    class_rows = [weight.detach().clone() for weight in label_weights(model)]
    assert model.config.null_label_id is None

    model.add_null_label(0.25)
    assert model.config.condition_dropout == 0.25
    assert model.config.null_label_id == NUM_CLASSES and model.config.num_label_embeddings == NUM_CLASSES + 1
    torch.testing.assert_close(flat_logits(model, codes, labels), before, rtol=0, atol=0)
    for weight, old in zip(label_weights(model), class_rows, strict=True):
        assert weight.shape == (NUM_CLASSES + 1, old.shape[1])
        assert torch.equal(weight[:NUM_CLASSES], old)
        torch.testing.assert_close(weight[NUM_CLASSES], old.mean(dim=0))
    null = torch.full((6,), NUM_CLASSES)
    null_logits = flat_logits(model, codes, null)
    assert not torch.allclose(null_logits, before)

    model.save_pretrained(tmp_path)
    loaded = VQPriorModel.from_pretrained(tmp_path)
    assert loaded.config.condition_dropout == 0.25 and loaded.config.null_label_id == NUM_CLASSES
    torch.testing.assert_close(flat_logits(loaded, codes, labels), before, rtol=0, atol=0)
    torch.testing.assert_close(flat_logits(loaded, codes, null), null_logits, rtol=0, atol=0)
    with pytest.raises(ValueError, match="already has a 'no label'"):
        loaded.add_null_label(0.1)
    assert loaded.config.condition_dropout == 0.25


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, -0.1, "x", True, float("nan")], ids=repr)
def test_add_null_label_refuses_bad_fractions_and_changes_nothing(prior_type, fraction):
    model = tiny_prior(prior_type)
    with pytest.raises(ValueError, match=r"condition_dropout must lie in \(0, 1\)"):
        model.add_null_label(fraction)
    assert model.config.condition_dropout == 0.0 and model.config.null_label_id is None
    assert all(weight.shape[0] == NUM_CLASSES for weight in label_weights(model))


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_add_null_label_refuses_an_unconditional_prior(prior_type):
    model = tiny_prior(prior_type, num_classes=0)
    with pytest.raises(ValueError, match=r"unconditional prior \(config.num_classes=0\)"):
        model.add_null_label(0.1)
    assert model.config.condition_dropout == 0.0


# ---- condition dropout while training


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_training_with_condition_dropout_near_1_is_training_on_the_no_label(prior_type):
    model = distinct_prior(prior_type, "null_label")
    model.config.condition_dropout = 0.99
    codes, labels = random_codes(4), torch.tensor([0, 1, 2, 1])
    null = torch.full((4,), NUM_CLASSES)
    with torch.no_grad():
        null_loss, class_loss = model(codes, null).loss, model(codes, labels).loss
    assert abs(null_loss - class_loss) > 0.05
    torch.manual_seed(0)  # 0.99 ** 4: every label of this draw is dropped
    train_loss = model.train()(codes, labels).loss
    torch.testing.assert_close(train_loss, null_loss)
    train_loss.backward()
    for grad in label_grads(model):  # only the "no label" learns
        assert grad[NUM_CLASSES].abs().sum() > 0 and grad[:NUM_CLASSES].abs().sum() == 0
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(codes, labels).loss, class_loss, rtol=0, atol=0)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_condition_dropout_replaces_its_fraction_of_labels_in_training_only(prior_type):
    """Each sample's first-position logits (which depend on its label alone) are those of its class or of the "no
    label"; in training mode about condition_dropout of them are the "no label"'s, in eval mode none."""
    model = distinct_prior(prior_type, "null_label")
    model.config.condition_dropout = 0.3
    batch_size = 400
    codes, labels = random_codes(batch_size), torch.arange(batch_size) % NUM_CLASSES

    def first(class_labels):
        return flat_logits(model, codes, class_labels)[:, 0]

    own, null = first(labels), first(torch.full((batch_size,), NUM_CLASSES))
    assert ((own - null).abs().amax(dim=-1) > 0.1).all()
    model.train()
    trained = first(labels)
    is_own = torch.isclose(trained, own, atol=1e-5).all(dim=-1)
    is_null = torch.isclose(trained, null, atol=1e-5).all(dim=-1)
    assert (is_own ^ is_null).all()
    # Binomial(400, 0.3): mean 120, standard deviation 9.2.
    assert 80 < is_null.sum() < 160, is_null.sum()
    model.eval()
    torch.testing.assert_close(first(labels), own, rtol=0, atol=0)


# ---- class labels


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_forward_takes_the_null_label_id_only_with_a_no_label(prior_type):
    codes = random_codes(2)
    with_null = tiny_prior(prior_type, condition_dropout=0.1)
    logits = flat_logits(with_null, codes, torch.tensor([NUM_CLASSES, 0]))
    assert not torch.allclose(logits[0, 0], logits[1, 0])
    with pytest.raises(ValueError, match=r'or 3 for "no label" \(config.null_label_id\), got \[0, 4\]'):
        with_null(codes, torch.tensor([0, NUM_CLASSES + 1]))
    without = tiny_prior(prior_type)
    with pytest.raises(ValueError, match=r"\[0, 3\) \(config.num_classes\), got \[0, 3\]"):
        without(codes, torch.tensor([0, NUM_CLASSES]))


# ---- bad guidance_scale


@pytest.mark.parametrize(
    ("scale", "error"),
    [
        (-1.0, ValueError),
        (-1e-9, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("2", TypeError),
        (True, TypeError),
        (torch.tensor(2.0), TypeError),
    ],
    ids=repr,
)
@pytest.mark.parametrize("mode", MODES)
def test_generate_refuses_a_bad_guidance_scale(scale, error, mode):
    model = tiny_prior(condition_dropout=0.1 if mode == "null_label" else 0.0)
    with pytest.raises(error, match="guidance_scale must be a"):
        model.generate(2, 0, guidance_scale=scale)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_guidance_needs_a_class_conditional_prior(prior_type):
    model = tiny_prior(prior_type, num_classes=0)
    for scale in (0.0, 2.0):
        with pytest.raises(
            ValueError, match=rf"guidance_scale={scale}: .* unconditional \(config.num_classes=0\)"
        ):
            model.generate(2, guidance_scale=scale)
    reference = model.generate(2, generator=seeded())
    assert torch.equal(model.generate(2, guidance_scale=1, generator=seeded()), reference)
    sample_next = partial(sample_codes, warpers=[], generator=seeded())
    assert torch.equal(model.backbone.sample(2, None, sample_next, True, None), reference)


def test_guidance_scale_takes_numpy_numbers():
    model = distinct_prior()
    expected = model.generate(3, [0, 1, 2], guidance_scale=2.0, generator=seeded())
    for scale in (2, np.float32(2.0), np.int64(2)):
        assert torch.equal(model.generate(3, [0, 1, 2], guidance_scale=scale, generator=seeded()), expected)


# ---- generation_config


@pytest.mark.parametrize("mode", MODES)
def test_a_saved_guidance_scale_is_the_default(tmp_path, mode):
    model = distinct_prior("transformer", mode)
    model.generation_config.guidance_scale = 2.0
    model.save_pretrained(tmp_path)
    for loader in (VQPriorModel, AutoModel):
        loaded = loader.from_pretrained(tmp_path)
        assert loaded.generation_config.guidance_scale == 2.0
        expected = loaded.generate(4, LABELS, guidance_scale=2.0, generator=seeded())
        assert torch.equal(loaded.generate(4, LABELS, generator=seeded()), expected)
        assert not torch.equal(loaded.generate(4, LABELS, guidance_scale=1, generator=seeded()), expected)


def test_a_saved_guidance_schedule_is_the_default(tmp_path):
    model = distinct_prior("transformer", "null_label")
    model.generation_config.guidance_scale = 6.0
    model.generation_config.guidance_schedule = "cosine"
    model.save_pretrained(tmp_path)
    loaded = VQPriorModel.from_pretrained(tmp_path)
    expected = loaded.generate(4, LABELS, guidance_scale=6.0, guidance_schedule="cosine", generator=seeded())
    assert torch.equal(loaded.generate(4, LABELS, generator=seeded()), expected)
    constant = loaded.generate(4, LABELS, guidance_schedule="constant", generator=seeded())
    assert not torch.equal(constant, expected)
    # The saved schedule goes with the saved scale: a scale given alone is constant, and 1 is unguided.
    assert torch.equal(
        loaded.generate(4, LABELS, guidance_scale=3.0, generator=seeded()),
        loaded.generate(4, LABELS, guidance_scale=3.0, guidance_schedule="constant", generator=seeded()),
    )
    assert torch.equal(
        loaded.generate(4, LABELS, guidance_scale=1, generator=seeded()), unguided_codes(loaded, LABELS)
    )


def test_a_schedule_in_a_generation_config_written_from_the_model_config_is_kept(tmp_path):
    """Priors saved before they had their own sampling defaults wrote `_from_model_config: true`, with which
    transformers drops the fields it does not know."""
    model = distinct_prior("transformer", "null_label")
    model.save_pretrained(tmp_path)
    legacy = {"_from_model_config": True, "guidance_scale": 5.0, "guidance_schedule": "cosine"}
    (tmp_path / "generation_config.json").write_text(json.dumps(legacy))
    loaded = VQPriorModel.from_pretrained(tmp_path)
    assert (loaded.default_guidance_scale, loaded.default_guidance_schedule) == (5.0, "cosine")
    loaded.save_pretrained(tmp_path / "again")
    assert VQPriorModel.from_pretrained(tmp_path / "again").default_guidance_schedule == "cosine"


def test_a_saved_guidance_scale_of_0_is_kept(tmp_path):
    model = distinct_prior("transformer", "null_label")
    model.generation_config.guidance_scale = 0.0
    model.save_pretrained(tmp_path)
    loaded = VQPriorModel.from_pretrained(tmp_path)
    expected = loaded.generate(4, LABELS, guidance_scale=0.0, generator=seeded())
    assert torch.equal(loaded.generate(4, LABELS, generator=seeded()), expected)
    assert not torch.equal(loaded.generate(4, LABELS, guidance_scale=1, generator=seeded()), expected)


def test_a_folder_without_generation_config_samples_unguided(tmp_path):
    model = distinct_prior("transformer", "null_label")
    model.generation_config.guidance_scale = 2.0
    model.save_pretrained(tmp_path)
    (tmp_path / "generation_config.json").unlink()
    loaded = VQPriorModel.from_pretrained(tmp_path)
    assert loaded.generation_config.guidance_scale is None
    assert torch.equal(loaded.generate(4, LABELS, generator=seeded()), unguided_codes(loaded, LABELS))


# ---- pipeline and CLI


def save_guided_pipeline(folder, mode: str, guidance_scale: float | None = None):
    """A tiny image VQ-VAE and a conditional transformer prior (classes cat, dog, frog) saved as a pipeline
    folder; the prior's saved default guidance scale is `guidance_scale`."""
    vqvae = tiny_vqvae("image")
    prior = pipeline_prior(
        vqvae.config.code_shape,
        num_classes=NUM_CLASSES,
        condition_dropout=0.1 if mode == "null_label" else 0.0,
    )
    prior.generation_config.guidance_scale = guidance_scale
    return save_pipeline_folder(folder, vqvae, prior)


@pytest.mark.parametrize("mode", MODES)
def test_the_pipeline_samples_with_guidance(tmp_path, mode):
    pipe = quiet(pipeline("vq-sample", model=str(save_guided_pipeline(tmp_path, mode))))

    def run(**kwargs) -> torch.Tensor:
        return stack(pipe(num_samples=3, class_labels=[0, 1, 2], seed=0, output_type="pt", **kwargs))

    unguided, guided = run(), run(guidance_scale=2.0)
    torch.testing.assert_close(run(guidance_scale=1.0), unguided, rtol=0, atol=0)
    assert not torch.equal(guided, unguided)
    for schedule in ("constant", "linear"):
        codes = pipe.prior.generate(
            3, [0, 1, 2], guidance_scale=2.0, guidance_schedule=schedule, generator=seeded()
        )
        with torch.no_grad():
            expected = postprocess_samples(pipe.model.decode(codes), pipe.model.config, "pt")
        torch.testing.assert_close(run(guidance_scale=2.0, guidance_schedule=schedule), stack(expected))


def test_the_pipeline_uses_the_priors_saved_guidance_scale(tmp_path):
    pipe = quiet(pipeline("vq-sample", model=str(save_guided_pipeline(tmp_path, "null_label", 2.0))))
    assert pipe.prior.generation_config.guidance_scale == 2.0
    samples = stack(pipe(num_samples=3, class_labels=[0, 1, 2], seed=0, output_type="pt"))
    guided = stack(pipe(num_samples=3, class_labels=[0, 1, 2], seed=0, output_type="pt", guidance_scale=2.0))
    unguided = stack(pipe(num_samples=3, class_labels=[0, 1, 2], seed=0, output_type="pt", guidance_scale=1))
    torch.testing.assert_close(samples, guided, rtol=0, atol=0)
    assert not torch.equal(samples, unguided)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "--guidance_scale: must be a finite number >= 0, got -1"),
        ("inf", "--guidance_scale: must be a finite number >= 0, got inf"),
        ("nan", "--guidance_scale: must be a finite number >= 0, got nan"),
        ("x", "--guidance_scale: invalid non_negative_float value: 'x'"),
    ],
)
def test_the_cli_refuses_a_bad_guidance_scale(tmp_path, capsys, value, message):
    assert message in run_failing(["sample", str(tmp_path), "--guidance_scale", value], capsys)


def test_the_cli_samples_with_guidance(tmp_path, capsys):
    folder = save_guided_pipeline(tmp_path / "model", "null_label")

    def grid(name: str, *flags: str) -> np.ndarray:
        argv = [
            "sample",
            str(folder),
            "--class_labels",
            "cat",
            "dog",
            "frog",
            "--output_dir",
            str(tmp_path / name),
        ]
        assert main([*argv, *flags]) == 0
        return np.asarray(PIL.Image.open(tmp_path / name / "samples_grid.png"))

    unguided = grid("default")
    np.testing.assert_array_equal(grid("one", "--guidance_scale", "1"), unguided)
    three = grid("three", "--guidance_scale", "3")
    assert not np.array_equal(three, unguided)
    assert not np.array_equal(grid("cosine", "--guidance_scale", "3", "--guidance_schedule", "cosine"), three)
    message = run_failing(["sample", str(folder), "--guidance_schedule", "ramp"], capsys)
    assert (
        "--guidance_schedule: invalid choice: 'ramp' (choose from 'constant', 'linear', 'cosine')" in message
    )


def test_the_cli_reports_guidance_of_an_unconditional_prior(tmp_path, capsys):
    vqvae = tiny_vqvae("image")
    folder = save_pipeline_folder(tmp_path, vqvae, pipeline_prior(vqvae.config.code_shape))
    message = run_failing(["sample", str(folder), "--guidance_scale", "2"], capsys)
    assert "guidance_scale=2.0" in message and "unconditional" in message


# ---- train_prior.py --condition_dropout


def test_train_prior_condition_dropout_gives_a_new_prior_a_no_label(trained_pipeline_dir, tmp_path):  # noqa: F811
    argv = [
        *one_step_prior_args(trained_pipeline_dir),
        "--codes_cache_dir",
        str(tmp_path / "codes"),
        "--condition_dropout",
        "0.2",
        "--output_dir",
        str(tmp_path / "new"),
    ]
    load_script(TRAIN_PRIOR).main(argv)
    prior = VQPriorModel.from_pretrained(tmp_path / "new" / "prior")
    num_classes = prior.config.num_classes
    assert num_classes > 0 and prior.config.condition_dropout == 0.2
    assert prior.config.null_label_id == num_classes
    assert prior.backbone.decoder.wte.num_embeddings == prior.config.codebook_size + num_classes + 1


def test_train_prior_condition_dropout_adds_a_no_label_to_a_trained_prior(trained_pipeline_dir, tmp_path):  # noqa: F811
    trained_path = trained_pipeline_dir / "prior"
    trained = VQPriorModel.from_pretrained(trained_path)
    assert trained.config.null_label_id is None
    argv = [
        *fine_tuning(one_step_prior_args(trained_pipeline_dir), trained_path),
        "--codes_cache_dir",
        str(tmp_path / "codes"),
        "--condition_dropout",
        "0.1",
        "--learning_rate",
        "0",  # so that the weights after the step are the ones the script started from
        "--output_dir",
        str(tmp_path / "guided"),
    ]
    load_script(TRAIN_PRIOR).main(argv)
    prior = VQPriorModel.from_pretrained(tmp_path / "guided" / "prior")
    num_classes = trained.config.num_classes
    assert prior.config.condition_dropout == 0.1 and prior.config.null_label_id == num_classes
    start_tokens = prior.backbone.decoder.wte.weight[prior.config.codebook_size :]
    old_start_tokens = trained.backbone.decoder.wte.weight[trained.config.codebook_size :]
    assert torch.equal(start_tokens[:num_classes], old_start_tokens)
    torch.testing.assert_close(start_tokens[num_classes], old_start_tokens.mean(dim=0))
    codes = torch.randint(0, prior.config.codebook_size, (num_classes, *prior.config.code_shape))
    labels = torch.arange(num_classes)
    with torch.no_grad():
        torch.testing.assert_close(prior(codes, labels).logits, trained(codes, labels).logits, rtol=0, atol=0)
