"""VQSamplePipeline ("vq-sample"): loading from a saved folder, outputs per modality and output_type, seeds,
sampling batches, class conditioning, the progress bar and bad input."""

import json

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import tiny_config
from transformers import pipeline

from hf_vqvae import VQPriorConfig, VQPriorModel, VQSamplePipeline, VQVAEModel
from hf_vqvae.pipelines.outputs import postprocess_samples
from hf_vqvae.pipelines.remote_pipeline import REMOTE_TASK

K = 16
SAMPLING_RATE = 8000  # not the config default, so the pipeline must read it from the config
CLASS_NAMES = ["cat", "dog", "frog"]
# The PixelCNN models 2-D code grids only.
PRIOR_TYPES = {"image": ["transformer", "pixelcnn"], "audio": ["transformer"], "video": ["transformer"]}
CASES = [(modality, prior_type) for modality, types in PRIOR_TYPES.items() for prior_type in types]
# One sample: image (C, H, W), audio (C, T), video (T, C, H, W), as `output_type="pt"` gives it.
SAMPLE_SHAPES = {"image": (3, 16, 16), "audio": (2, 256), "video": (4, 3, 16, 16)}


def tiny_vqvae(modality: str, **overrides) -> VQVAEModel:
    """A tiny VQ-VAE (K=16; stereo for audio). Its codebook is drawn at std 20 rather than the default init,
    under which every code grid decodes to nearly the same grey; now different codes give clearly different
    signals and some values clamp at +-1."""
    torch.manual_seed(0)
    extra = {"in_channels": 2} if modality == "audio" else {}
    model = VQVAEModel(tiny_config(modality, sampling_rate=SAMPLING_RATE, **extra, **overrides)).eval()
    with torch.no_grad():
        model.quantizer.codebook.normal_(0, 20)
    return model


def tiny_prior(code_shape, prior_type="transformer", num_classes: int = 0, **overrides) -> VQPriorModel:
    """A 2-layer, 16-wide prior; weights at std 0.5 so that the class visibly moves the logits. A conditional
    prior names its classes CLASS_NAMES."""
    names = {}
    if num_classes:
        id2label = dict(enumerate(CLASS_NAMES))
        names = {"id2label": id2label, "label2id": {name: index for index, name in id2label.items()}}
    fields = dict(
        prior_type=prior_type,
        codebook_size=K,
        code_shape=list(code_shape),
        num_classes=num_classes,
        hidden_size=16,
        num_layers=2,
        num_heads=2,
        initializer_range=0.5,
        **names,
    )
    torch.manual_seed(1)
    return VQPriorModel(VQPriorConfig(**{**fields, **overrides})).eval()


def save_pipeline_folder(folder, vqvae: VQVAEModel, prior: VQPriorModel | None):
    """The hub-ready layout: the VQ-VAE at the root, the prior in `prior/`."""
    vqvae.save_pretrained(folder)
    if prior is not None:
        prior.save_pretrained(folder / "prior")
    return folder


def quiet(pipe: VQSamplePipeline) -> VQSamplePipeline:
    pipe.set_progress_bar_config(disable=True)
    return pipe


def stack(outputs) -> torch.Tensor:
    """The `output_type="pt"` samples of any modality as one tensor."""
    return torch.stack([output["audio"] if isinstance(output, dict) else output for output in outputs])


@pytest.fixture(scope="module")
def load_saved(tmp_path_factory):
    """`load_saved(modality, prior_type, num_classes)`: a tiny pipeline saved to a folder and loaded back with
    `pipeline("vq-sample", model=folder)`, built once per module; progress bar off."""
    pipes = {}

    def load(modality="image", prior_type="transformer", num_classes: int = 0) -> VQSamplePipeline:
        key = (modality, prior_type, num_classes)
        if key not in pipes:
            vqvae = tiny_vqvae(modality)
            prior = tiny_prior(vqvae.config.code_shape, prior_type, num_classes)
            folder = save_pipeline_folder(tmp_path_factory.mktemp("-".join(map(str, key))), vqvae, prior)
            pipes[key] = quiet(pipeline("vq-sample", model=str(folder)))
        return pipes[key]

    return load


# ---- loading


def test_a_dtype_given_to_pipeline_reaches_the_prior_too(tmp_path):
    vqvae = tiny_vqvae("image")
    folder = save_pipeline_folder(tmp_path, vqvae, tiny_prior(vqvae.config.code_shape))
    pipe = quiet(pipeline("vq-sample", model=str(folder), dtype=torch.bfloat16))
    assert pipe.model.dtype == pipe.prior.dtype == torch.bfloat16
    assert len(pipe(num_samples=2, seed=0)) == 2


@pytest.mark.parametrize(("modality", "prior_type"), CASES)
def test_pipeline_loads_vqvae_and_prior_from_the_folder(load_saved, modality, prior_type):
    pipe = load_saved(modality, prior_type)
    assert isinstance(pipe, VQSamplePipeline)
    assert isinstance(pipe.model, VQVAEModel) and pipe.model.config.modality == modality
    assert isinstance(pipe.prior, VQPriorModel) and pipe.prior.config.prior_type == prior_type
    assert not pipe.model.training and not pipe.prior.training
    # Both built by the same seeded helpers as the saved ones, so the weights must match exactly.
    vqvae = tiny_vqvae(modality)
    torch.testing.assert_close(pipe.model.state_dict(), vqvae.state_dict(), rtol=0, atol=0)
    prior = tiny_prior(vqvae.config.code_shape, prior_type)
    torch.testing.assert_close(pipe.prior.state_dict(), prior.state_dict(), rtol=0, atol=0)


@pytest.mark.parametrize(("modality", "prior_type"), CASES)
def test_samples_are_the_priors_codes_decoded(load_saved, modality, prior_type):
    pipe = load_saved(modality, prior_type)
    codes = pipe.prior.generate(3, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = postprocess_samples(pipe.model.decode(codes), pipe.model.config, "pt")
    torch.testing.assert_close(stack(pipe(num_samples=3, seed=7, output_type="pt")), stack(expected))


# ---- outputs per modality and output_type


@pytest.mark.parametrize("prior_type", PRIOR_TYPES["image"])
def test_image_samples_are_pil_images_by_default(load_saved, prior_type):
    images = load_saved("image", prior_type)(num_samples=3, seed=0)
    assert isinstance(images, list) and len(images) == 3
    assert all(isinstance(image, PIL.Image.Image) for image in images)
    assert [(image.mode, image.size) for image in images] == [("RGB", (16, 16))] * 3


@pytest.mark.parametrize("prior_type", PRIOR_TYPES["image"])
def test_image_output_types_hold_the_same_pixels(load_saved, prior_type):
    pipe = load_saved("image", prior_type)
    images = pipe(num_samples=2, seed=0)
    arrays = pipe(num_samples=2, seed=0, output_type="np")
    tensors = pipe(num_samples=2, seed=0, output_type="pt")
    for image, array, tensor in zip(images, arrays, tensors, strict=True):
        assert array.shape == (16, 16, 3) and array.dtype == np.uint8
        assert tensor.shape == (3, 16, 16) and tensor.dtype == torch.float32
        assert 0 <= tensor.min() and tensor.max() <= 1
        np.testing.assert_array_equal(np.asarray(image), array)
        np.testing.assert_array_equal((tensor * 255).round().byte().permute(1, 2, 0).numpy(), array)


@pytest.mark.parametrize("output_type", ["pil", "np"])
def test_audio_samples_are_numpy_waveforms_with_the_configs_sampling_rate(load_saved, output_type):
    samples = load_saved("audio")(num_samples=3, seed=0, output_type=output_type)
    assert len(samples) == 3
    for sample in samples:
        assert set(sample) == {"audio", "sampling_rate"}
        assert sample["sampling_rate"] == SAMPLING_RATE and isinstance(sample["sampling_rate"], int)
        audio = sample["audio"]
        assert isinstance(audio, np.ndarray) and audio.dtype == np.float32
        assert audio.shape == (2, 256)  # (channels, samples)
        assert -1 <= audio.min() and audio.max() <= 1


def test_audio_pt_is_the_same_waveform_as_a_tensor(load_saved):
    pipe = load_saved("audio")
    arrays = pipe(num_samples=2, seed=0, output_type="np")
    tensors = pipe(num_samples=2, seed=0, output_type="pt")
    for array, tensor in zip(arrays, tensors, strict=True):
        assert isinstance(tensor["audio"], torch.Tensor) and tensor["sampling_rate"] == SAMPLING_RATE
        np.testing.assert_array_equal(tensor["audio"].numpy(), array["audio"])


def test_video_samples_are_lists_of_pil_frames(load_saved):
    videos = load_saved("video")(num_samples=2, seed=0)
    assert len(videos) == 2
    for frames in videos:
        assert isinstance(frames, list) and len(frames) == 4  # sample_size [4, 16, 16]
        assert [(frame.mode, frame.size) for frame in frames] == [("RGB", (16, 16))] * 4


def test_video_output_types_hold_the_same_frames(load_saved):
    pipe = load_saved("video")
    videos = pipe(num_samples=2, seed=0)
    arrays = pipe(num_samples=2, seed=0, output_type="np")
    tensors = pipe(num_samples=2, seed=0, output_type="pt")
    for frames, array, tensor in zip(videos, arrays, tensors, strict=True):
        assert array.shape == (4, 16, 16, 3) and array.dtype == np.uint8  # (T, H, W, C)
        assert tensor.shape == (4, 3, 16, 16) and 0 <= tensor.min() and tensor.max() <= 1  # (T, C, H, W)
        np.testing.assert_array_equal(np.stack([np.asarray(frame) for frame in frames]), array)
        np.testing.assert_array_equal((tensor * 255).round().byte().permute(0, 2, 3, 1).numpy(), array)


# ---- seeds and batches


@pytest.mark.parametrize(("modality", "prior_type"), CASES)
def test_same_seed_gives_the_same_samples(load_saved, modality, prior_type):
    pipe = load_saved(modality, prior_type)
    first = stack(pipe(num_samples=3, seed=11, output_type="pt"))
    assert first.shape == (3, *SAMPLE_SHAPES[modality])
    torch.testing.assert_close(stack(pipe(num_samples=3, seed=11, output_type="pt")), first, rtol=0, atol=0)


@pytest.mark.parametrize(("modality", "prior_type"), CASES)
def test_different_seeds_give_different_samples(load_saved, modality, prior_type):
    pipe = load_saved(modality, prior_type)
    first = stack(pipe(num_samples=3, seed=11, output_type="pt"))
    second = stack(pipe(num_samples=3, seed=12, output_type="pt"))
    assert all(not torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_seed_leaves_the_global_rng_alone(load_saved):
    pipe = load_saved("image")
    torch.manual_seed(0)
    pipe(num_samples=2, seed=3)
    after_pipe = torch.rand(3)
    torch.manual_seed(0)
    torch.testing.assert_close(torch.rand(3), after_pipe)


def test_a_generator_draws_as_the_same_seed_does(load_saved):
    pipe = load_saved("image")
    seeded = stack(pipe(num_samples=3, seed=7, output_type="pt"))
    generator = torch.Generator().manual_seed(7)
    torch.testing.assert_close(stack(pipe(num_samples=3, generator=generator, output_type="pt")), seeded)
    # The generator runs on: a second call continues its stream instead of repeating the first samples.
    assert not torch.equal(stack(pipe(num_samples=3, generator=generator, output_type="pt")), seeded)


def test_a_seed_given_to_pipeline_reproduces_every_call(tmp_path):
    vqvae = tiny_vqvae("image")
    save_pipeline_folder(tmp_path, vqvae, tiny_prior(vqvae.config.code_shape))
    pipe = pipeline("vq-sample", model=str(tmp_path), seed=3, output_type="pt")
    torch.testing.assert_close(stack(pipe(num_samples=2)), stack(pipe(num_samples=2)), rtol=0, atol=0)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 8])
def test_batch_size_does_not_change_the_number_of_samples(load_saved, batch_size):
    samples = load_saved("audio")(num_samples=5, batch_size=batch_size, output_type="np")
    assert len(samples) == 5 and all(sample["audio"].shape == (2, 256) for sample in samples)


def test_seeded_batches_depend_on_the_batch_size(load_saved):
    # What holds: one generator, seeded once, runs through the batches in turn. So a seed reproduces the
    # samples for a given batch_size, and the first batch equals a run of batch_size samples; but the draws
    # depend on the batch split, so batch_size=2 does not reproduce the single-batch samples of the same seed.
    pipe = load_saved("image")
    split = stack(pipe(num_samples=4, seed=5, batch_size=2, output_type="pt"))
    torch.testing.assert_close(stack(pipe(num_samples=4, seed=5, batch_size=2, output_type="pt")), split)
    torch.testing.assert_close(stack(pipe(num_samples=2, seed=5, output_type="pt")), split[:2])
    single = stack(pipe(num_samples=4, seed=5, output_type="pt"))
    assert not torch.equal(single, split)


def test_batches_take_their_slice_of_the_class_labels(load_saved):
    pipe = load_saved("image", num_classes=3)
    labels = [2, 0, 1, 1, 2]
    generator = torch.Generator().manual_seed(4)
    codes = torch.cat(
        [
            pipe.prior.generate(2, labels[:2], generator=generator),
            pipe.prior.generate(2, labels[2:4], generator=generator),
            pipe.prior.generate(1, labels[4:], generator=generator),
        ]
    )
    with torch.no_grad():
        expected = postprocess_samples(pipe.model.decode(codes), pipe.model.config, "pt")
    samples = pipe(num_samples=5, class_labels=labels, batch_size=2, seed=4, output_type="pt")
    torch.testing.assert_close(stack(samples), stack(expected))


def test_sampling_options_reach_the_prior(load_saved):
    # top_k=1 is greedy decoding: every sample is the same grid, whatever the seed.
    pipe = load_saved("image")
    samples = stack(pipe(num_samples=3, top_k=1, seed=0, output_type="pt"))
    torch.testing.assert_close(samples, samples[:1].expand_as(samples), rtol=0, atol=0)
    torch.testing.assert_close(stack(pipe(num_samples=1, top_k=1, seed=1, output_type="pt")), samples[:1])


# ---- class conditioning


@pytest.mark.parametrize("prior_type", PRIOR_TYPES["image"])
@pytest.mark.parametrize("class_labels", [1, "dog", [1, 1, 1], ["dog", "dog", "dog"], (1, "dog", 1)], ids=str)
def test_int_list_and_class_name_labels_agree(load_saved, prior_type, class_labels):
    pipe = load_saved("image", prior_type, num_classes=3)
    expected = pipe(num_samples=3, class_labels=torch.tensor([1, 1, 1]), seed=2, output_type="pt")
    samples = pipe(num_samples=3, class_labels=class_labels, seed=2, output_type="pt")
    torch.testing.assert_close(stack(samples), stack(expected), rtol=0, atol=0)


def test_class_labels_change_the_samples(load_saved):
    pipe = load_saved("image", num_classes=3)
    cats = stack(pipe(num_samples=3, class_labels="cat", seed=2, output_type="pt"))
    frogs = stack(pipe(num_samples=3, class_labels="frog", seed=2, output_type="pt"))
    assert all(not torch.equal(cat, frog) for cat, frog in zip(cats, frogs, strict=True))


def test_per_sample_labels_follow_the_list(load_saved):
    pipe = load_saved("image", num_classes=3)
    codes = pipe.prior.generate(3, class_labels=[2, 0, 1], generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        expected = postprocess_samples(pipe.model.decode(codes), pipe.model.config, "pt")
    samples = pipe(num_samples=3, class_labels=["frog", "cat", "dog"], seed=9, output_type="pt")
    torch.testing.assert_close(stack(samples), stack(expected))


def test_class_label_as_first_argument(load_saved):
    pipe = load_saved("image", num_classes=3)
    torch.testing.assert_close(
        stack(pipe("dog", num_samples=2, seed=0, output_type="pt")),
        stack(pipe(num_samples=2, class_labels=1, seed=0, output_type="pt")),
    )


def test_a_positional_list_of_labels_is_one_call(load_saved):
    pipe = load_saved("image", num_classes=3)
    torch.testing.assert_close(
        stack(pipe(["dog", "cat"], num_samples=2, seed=0, output_type="pt")),
        stack(pipe(num_samples=2, class_labels=[1, 0], seed=0, output_type="pt")),
    )


def test_numpy_arguments_work_as_python_ones(load_saved):
    pipe = load_saved("image", num_classes=3)
    expected = pipe(num_samples=2, class_labels=[1, 0], seed=3, batch_size=1, output_type="pt")
    samples = pipe(
        num_samples=np.int64(2),
        class_labels=np.array([1, 0]),
        seed=np.int64(3),
        batch_size=np.int64(1),
        output_type="pt",
    )
    torch.testing.assert_close(stack(samples), stack(expected))


@pytest.mark.parametrize("seed", [1.5, "0", 2**70, True])
def test_seed_must_be_an_integer(load_saved, seed):
    with pytest.raises(ValueError, match=r"seed must be an integer in \[-2\*\*63, 2\*\*64\), got"):
        load_saved("image")(num_samples=2, seed=seed)


def test_save_pretrained_writes_a_folder_the_pipeline_loads(load_saved, tmp_path):
    pipe = load_saved("image", num_classes=3)
    pipe.save_pretrained(tmp_path / "saved")
    saved = {path.name for path in (tmp_path / "saved").iterdir() if not path.name.endswith(".py")}
    assert saved == {"config.json", "model.safetensors", "preprocessor_config.json", "prior"}
    assert (tmp_path / "saved" / "modeling_vqvae.py").is_file()  # remote code (tests/test_remote_code.py)
    assert (tmp_path / "saved" / "prior" / "modeling_prior.py").is_file()
    # The pipeline's own code is registered under its own task name only: "vq-sample" still loads without
    # trust_remote_code, from the installed package.
    custom_pipelines = json.loads((tmp_path / "saved" / "config.json").read_text())["custom_pipelines"]
    assert list(custom_pipelines) == [REMOTE_TASK] and (tmp_path / "saved" / "vq_sample.py").is_file()
    reloaded = quiet(pipeline("vq-sample", model=str(tmp_path / "saved")))
    torch.testing.assert_close(
        stack(reloaded(num_samples=2, class_labels=1, seed=0, output_type="pt")),
        stack(pipe(num_samples=2, class_labels=1, seed=0, output_type="pt")),
    )


def test_a_batch_size_given_to_pipeline_is_the_sampling_batch(tmp_path):
    vqvae = tiny_vqvae("image")
    folder = save_pipeline_folder(tmp_path, vqvae, tiny_prior(vqvae.config.code_shape))
    batched = quiet(pipeline("vq-sample", model=str(folder), batch_size=1))
    default = quiet(pipeline("vq-sample", model=str(folder)))
    torch.testing.assert_close(
        stack(batched(num_samples=2, seed=0, output_type="pt")),
        stack(default(num_samples=2, seed=0, batch_size=1, output_type="pt")),
    )


def test_a_prior_folder_is_not_a_pipeline_folder(load_saved, tmp_path):
    pipe = load_saved("image")
    pipe.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="got a VQPriorModel.*pass its parent folder"):
        pipeline("vq-sample", model=str(tmp_path / "prior"))


def test_class_names_from_id2label_alone():
    # transformers 5 leaves label2id unset when only id2label is given; the names must still work.
    vqvae = tiny_vqvae("image")
    prior = tiny_prior(vqvae.config.code_shape, num_classes=3, label2id=None)
    assert prior.config.label2id is None
    pipe = quiet(VQSamplePipeline(model=vqvae, prior=prior))
    torch.testing.assert_close(
        stack(pipe(num_samples=2, class_labels="frog", seed=0, output_type="pt")),
        stack(pipe(num_samples=2, class_labels=2, seed=0, output_type="pt")),
    )


# ---- progress bar


def direct_pipeline(num_classes: int = 0) -> VQSamplePipeline:
    vqvae = tiny_vqvae("image")
    return VQSamplePipeline(model=vqvae, prior=tiny_prior(vqvae.config.code_shape, num_classes=num_classes))


def test_progress_bar_shows_sampling_progress_by_default(capsys):
    pipe = direct_pipeline()
    capsys.readouterr()
    pipe(num_samples=2, seed=0)
    err = capsys.readouterr().err
    assert "Codes" in err and "16/16" in err  # a 4x4 code grid


def test_progress_bar_can_be_disabled(capsys):
    pipe = quiet(direct_pipeline())
    capsys.readouterr()
    pipe(num_samples=2, seed=0, batch_size=1)
    assert capsys.readouterr().err == ""


# ---- direct construction


def test_direct_construction_matches_the_saved_folder(tmp_path):
    vqvae = tiny_vqvae("image")
    prior = tiny_prior(vqvae.config.code_shape, prior_type="pixelcnn")
    direct = quiet(VQSamplePipeline(model=vqvae, prior=prior))
    loaded = quiet(pipeline("vq-sample", model=str(save_pipeline_folder(tmp_path, vqvae, prior))))
    torch.testing.assert_close(
        stack(direct(num_samples=3, seed=0, output_type="pt")),
        stack(loaded(num_samples=3, seed=0, output_type="pt")),
    )


def test_direct_construction_without_prior_needs_a_folder():
    with pytest.raises(ValueError, match=r"not loaded from a folder; pass the prior explicitly"):
        VQSamplePipeline(model=tiny_vqvae("image"))


# ---- bad input


@pytest.mark.parametrize("class_labels", [1, [0, 1], "cat"], ids=str)
def test_class_labels_on_an_unconditional_prior(load_saved, class_labels):
    with pytest.raises(ValueError, match=r"This prior is unconditional \(config.num_classes=0\)"):
        load_saved("image")(num_samples=2, class_labels=class_labels)


def test_labels_set_the_number_of_samples_unless_it_is_given(load_saved):
    pipe = load_saved("image", num_classes=3)
    assert len(pipe(class_labels=[2, 0, 1])) == 3
    assert len(pipe(class_labels=np.array([2, 0]))) == 2
    assert len(pipe(class_labels=2)) == 4  # one label for all: the default count
    with pytest.raises(ValueError, match="class_labels is empty"):
        pipe(class_labels=[])
    scalar = pipe(class_labels=torch.tensor(2), num_samples=2, seed=1, output_type="np")
    integer = pipe(class_labels=2, num_samples=2, seed=1, output_type="np")
    assert all(np.array_equal(a, b) for a, b in zip(scalar, integer, strict=True))


def test_conditional_prior_without_labels_cycles_through_its_classes(load_saved):
    pipe = load_saved("image", num_classes=3)
    cycled = pipe(num_samples=5, seed=4, output_type="np")
    explicit = pipe(num_samples=5, class_labels=[0, 1, 2, 0, 1], seed=4, output_type="np")
    other = pipe(num_samples=5, class_labels=[1, 1, 1, 1, 1], seed=4, output_type="np")
    assert all(np.array_equal(a, b) for a, b in zip(cycled, explicit, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(cycled, other, strict=True))


@pytest.mark.parametrize("class_labels", [3, -1, [0, 1, 2, 3]], ids=str)
def test_class_labels_out_of_range(load_saved, class_labels):
    with pytest.raises(ValueError, match=r"class_labels must lie in \[0, 3\)"):
        load_saved("image", num_classes=3)(num_samples=4, class_labels=class_labels, batch_size=2)


def test_unknown_class_names(load_saved):
    known = r"this prior knows \['cat', 'dog', 'frog'\]"
    with pytest.raises(ValueError, match=r"Unknown class names \['horse'\]; " + known):
        load_saved("image", num_classes=3)(num_samples=2, class_labels=["cat", "horse"])


def test_one_class_label_per_sample(load_saved):
    with pytest.raises(ValueError, match=r"class_labels must have shape \(4,\), one per sample, got \(2,\)"):
        load_saved("image", num_classes=3)(num_samples=4, class_labels=[0, 1])


def test_class_labels_twice(load_saved):
    with pytest.raises(ValueError, match="either as the first argument or as `class_labels`, not both"):
        load_saved("image", num_classes=3)(1, class_labels=1)


@pytest.mark.parametrize("num_samples", [0, -2, 1.5])
def test_num_samples_must_be_positive(load_saved, num_samples):
    with pytest.raises(ValueError, match=r"num_samples must be a positive integer, got"):
        load_saved("image")(num_samples=num_samples)


@pytest.mark.parametrize("temperature", [0, -1.0])
def test_temperature_must_be_positive(load_saved, temperature):
    with pytest.raises(ValueError, match=rf"temperature must be a number > 0 .*got {temperature}"):
        load_saved("image")(num_samples=2, temperature=temperature)


def test_seed_and_generator_together(load_saved):
    with pytest.raises(ValueError, match=r"Pass either `seed` or `generator`, not both"):
        load_saved("image")(num_samples=2, seed=0, generator=torch.Generator().manual_seed(0))


def test_generator_must_be_a_torch_generator(load_saved):
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator, got int"):
        load_saved("image")(num_samples=2, generator=0)


@pytest.mark.parametrize("batch_size", [0, -1])
def test_batch_size_must_be_positive(load_saved, batch_size):
    with pytest.raises(ValueError, match=rf"batch_size must be None or an integer >= 1, got {batch_size}"):
        load_saved("image")(num_samples=2, batch_size=batch_size)


def test_unknown_output_type(load_saved):
    with pytest.raises(ValueError, match=r"output_type must be one of \('pil', 'np', 'pt'\), got 'jpeg'"):
        load_saved("image")(num_samples=2, output_type="jpeg")


def test_prior_with_another_codebook_size(tmp_path):
    vqvae = tiny_vqvae("image")
    save_pipeline_folder(tmp_path, vqvae, tiny_prior(vqvae.config.code_shape, codebook_size=32))
    with pytest.raises(ValueError, match=r"The prior models 32 codes but the VQ-VAE has codebook_size 16"):
        pipeline("vq-sample", model=str(tmp_path))


def test_prior_with_another_code_shape(tmp_path):
    save_pipeline_folder(tmp_path, tiny_vqvae("image"), tiny_prior([8, 8]))
    message = r"The prior's code_shape \[8, 8\] does not match the VQ-VAE's code grid \[4, 4\]"
    with pytest.raises(ValueError, match=message):
        pipeline("vq-sample", model=str(tmp_path))


def test_folder_without_prior(tmp_path):
    save_pipeline_folder(tmp_path, tiny_vqvae("image"), prior=None)
    with pytest.raises(ValueError, match=r"No prior found at .*/prior: a vq-sample model folder holds"):
        pipeline("vq-sample", model=str(tmp_path))


def test_compile_reaches_the_prior_and_gives_the_same_samples():
    vqvae = tiny_vqvae("image")
    pipe = quiet(VQSamplePipeline(model=vqvae, prior=tiny_prior(vqvae.config.code_shape, num_classes=3)))
    eager = pipe(num_samples=2, class_labels=1, seed=0, output_type="pt")
    compiled = pipe(num_samples=2, class_labels=1, seed=0, output_type="pt", compile=True)
    torch.testing.assert_close(stack(compiled), stack(eager), rtol=0, atol=0)
    assert pipe.prior.backbone._static_steps  # the compiled step was built
