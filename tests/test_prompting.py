"""Prompted generation: `generate(prompt_codes=...)` keeps the prompt (a flat raster prefix or the first slices of
the grid) and continues it, for both backbones, with and without classifier-free guidance; the cache agrees with
the reference sampler; the transformer reads the prompt in one pass; the progress bar counts the generated codes;
bad prompts are refused; the pipeline's `prompt=` / `prompt_fraction=` and `hf-vqvae sample --prompt`."""

import numpy as np
import PIL.Image
import pytest
import soundfile
import torch
from test_cli import IMAGE_CONFIG, run_failing, save_model, write_inputs
from test_guidance import LABELS, NUM_CLASSES, K, distinct_prior, hand_guided_log_probs, seeded
from test_guidance import tiny_prior as guidance_prior
from test_pipeline import SAMPLING_RATE, quiet, stack, tiny_prior, tiny_vqvae

from hf_vqvae import VQPriorModel, VQSamplePipeline, VQVAEModel
from hf_vqvae.cli import main
from hf_vqvae.data import build_preprocessor
from hf_vqvae.models.prior import modeling_prior
from hf_vqvae.pipelines.outputs import postprocess_samples
from hf_vqvae.pipelines.prompting import encode_prompt, prompt_slices

# (prior_type, code_shape, flat prompt length P): P is no whole number of rows / slices.
CASES = [
    ("transformer", (4, 4), 5),
    ("transformer", (6,), 3),
    ("transformer", (2, 3, 3), 7),
    ("pixelcnn", (4, 4), 6),
]
CASE_IDS = [f"{prior_type}-{'x'.join(map(str, shape))}" for prior_type, shape, _ in CASES]
# (name, mode of distinct_prior, guidance_scale): no guidance, the learned "no label", the class mixture.
GUIDANCE = [
    ("unguided", "class_mixture", 1.0),
    ("null_label", "null_label", 3.0),
    ("class_mixture", "class_mixture", 3.0),
]
GUIDANCE_IDS = [name for name, _, _ in GUIDANCE]


def prompted_prior(prior_type, code_shape, guidance) -> tuple[VQPriorModel, float]:
    """A conditional prior whose labels really differ, and the guidance scale to sample it with."""
    _, mode, scale = guidance
    return distinct_prior(prior_type, mode, code_shape), scale


def random_prompt(batch_size: int, length: int, seed: int = 5) -> torch.LongTensor:
    """(batch_size, length) codes, different in every row."""
    return torch.randint(0, K, (batch_size, length), generator=seeded(seed))


def num_codes(code_shape) -> int:
    return int(np.prod(code_shape))


# ---- the prompt is kept


@pytest.mark.parametrize("guidance", GUIDANCE, ids=GUIDANCE_IDS)
@pytest.mark.parametrize(("prior_type", "code_shape", "length"), CASES, ids=CASE_IDS)
def test_kept_codes_equal_a_flat_prompt(prior_type, code_shape, length, guidance):
    model, scale = prompted_prior(prior_type, code_shape, guidance)
    prompt = random_prompt(4, length)
    codes = model.generate(4, LABELS, guidance_scale=scale, prompt_codes=prompt, generator=seeded())
    assert codes.shape == (4, *code_shape)
    assert torch.equal(codes.flatten(1)[:, :length], prompt)
    assert codes.min() >= 0 and codes.max() < K
    # The rest is sampled: other draws differ there, never in the prompt.
    other = model.generate(4, LABELS, guidance_scale=scale, prompt_codes=prompt, generator=seeded(1))
    assert torch.equal(other.flatten(1)[:, :length], prompt)
    assert not torch.equal(other, codes)


@pytest.mark.parametrize("guidance", GUIDANCE, ids=GUIDANCE_IDS)
@pytest.mark.parametrize(
    ("prior_type", "code_shape", "length"),
    [case for case in CASES if len(case[1]) > 1],
    ids=CASE_IDS[:1] + CASE_IDS[2:],
)
def test_a_prompt_of_first_slices_is_kept_and_is_the_flat_prefix_of_its_codes(
    prior_type, code_shape, length, guidance
):
    model, scale = prompted_prior(prior_type, code_shape, guidance)
    kept = code_shape[0] // 2  # 2 rows of a 4x4 grid, the first 3x3 slice of a 2x3x3 one
    slices = torch.randint(0, K, (4, kept, *code_shape[1:]), generator=seeded(6))
    codes = model.generate(4, LABELS, guidance_scale=scale, prompt_codes=slices, generator=seeded())
    assert codes.shape == (4, *code_shape)
    assert torch.equal(codes[:, :kept], slices)
    flat = model.generate(4, LABELS, guidance_scale=scale, prompt_codes=slices.flatten(1), generator=seeded())
    assert torch.equal(flat, codes)


@pytest.mark.parametrize("guidance", GUIDANCE, ids=GUIDANCE_IDS)
@pytest.mark.parametrize(("prior_type", "code_shape", "length"), CASES, ids=CASE_IDS)
def test_one_prompt_is_kept_in_every_sample(prior_type, code_shape, length, guidance):
    model, scale = prompted_prior(prior_type, code_shape, guidance)
    prompt = random_prompt(1, length)
    codes = model.generate(4, LABELS, guidance_scale=scale, prompt_codes=prompt, generator=seeded())
    assert torch.equal(codes.flatten(1)[:, :length], prompt.expand(4, -1))
    repeated = prompt.expand(4, -1).clone()
    assert torch.equal(
        model.generate(4, LABELS, guidance_scale=scale, prompt_codes=repeated, generator=seeded()), codes
    )


def test_a_prompt_of_another_integer_dtype_is_kept():
    model = guidance_prior()
    prompt = random_prompt(2, 5)
    codes = model.generate(2, [0, 1], prompt_codes=prompt.int(), generator=seeded())
    assert codes.dtype == torch.long and torch.equal(codes.flatten(1)[:, :5], prompt)
    assert torch.equal(codes, model.generate(2, [0, 1], prompt_codes=prompt, generator=seeded()))


# ---- the cache


@pytest.mark.parametrize("guidance", GUIDANCE, ids=GUIDANCE_IDS)
@pytest.mark.parametrize(("prior_type", "code_shape", "length"), CASES, ids=CASE_IDS)
def test_cached_and_naive_sampling_agree_with_a_prompt(prior_type, code_shape, length, guidance):
    model, scale = prompted_prior(prior_type, code_shape, guidance)
    prompt = random_prompt(4, length)

    def sample(use_cache: bool) -> torch.LongTensor:
        return model.generate(
            4, LABELS, guidance_scale=scale, prompt_codes=prompt, generator=seeded(3), use_cache=use_cache
        )

    cached = sample(True)
    assert torch.equal(cached, sample(False))
    assert torch.equal(cached.flatten(1)[:, :length], prompt)


# ---- the rest is conditioned on the prompt


@pytest.mark.parametrize("guidance", GUIDANCE, ids=GUIDANCE_IDS)
@pytest.mark.parametrize(("prior_type", "code_shape", "length"), CASES, ids=CASE_IDS)
def test_greedy_continuations_follow_the_full_forward_given_the_prompt(
    prior_type, code_shape, length, guidance
):
    """top_k=1 takes the argmax of the (guided) distribution at every generated position, as full forwards on the
    sampled grid compute it: with the prompt in place, not zeros or another prompt."""
    model, scale = prompted_prior(prior_type, code_shape, guidance)
    if (
        prior_type == "pixelcnn"
    ):  # its class biases otherwise outweigh the codes: every prompt, one continuation
        with torch.no_grad():
            model.backbone.embedding.weight.mul_(5)

    def greedy(prompt):
        codes = model.generate(4, LABELS, top_k=1, guidance_scale=scale, prompt_codes=prompt)
        expected = hand_guided_log_probs(model, codes, LABELS, scale).argmax(dim=-1)
        assert torch.equal(codes.flatten(1)[:, :length], prompt)
        assert torch.equal(codes.flatten(1)[:, length:], expected[:, length:])
        return codes.flatten(1)[:, length:]

    assert not torch.equal(greedy(random_prompt(4, length, seed=5)), greedy(random_prompt(4, length, seed=8)))


def train_briefly(model: VQPriorModel, make_codes, steps: int) -> VQPriorModel:
    """A few Adam steps on grids from `make_codes(step)`; returns the model in eval mode."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for step in range(steps):
        loss = model(make_codes(step)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def test_a_prior_trained_to_count_continues_the_count_of_its_prompt():
    """Trained on code[i + 1] = code[i] + 1 mod K (raster order), the transformer continues each prompt's count."""

    def counting(step):
        starts = torch.randint(0, K, (32, 1), generator=seeded(step))
        return ((starts + torch.arange(16)) % K).view(32, 4, 4)

    model = train_briefly(guidance_prior(num_classes=0), counting, 40)
    prompt = torch.tensor([[5, 6, 7], [14, 15, 0], [9, 10, 11]])
    codes = model.generate(3, prompt_codes=prompt, generator=seeded()).flatten(1)
    assert torch.equal(codes, (prompt[:, :1] + torch.arange(16)) % K)


def test_a_pixelcnn_trained_to_copy_the_row_above_repeats_its_prompts_row():
    def copying(step):
        return torch.randint(0, K, (32, 1, 4), generator=seeded(step)).expand(32, 4, 4).contiguous()

    model = train_briefly(guidance_prior("pixelcnn", num_classes=0), copying, 60)
    prompt = torch.randint(0, K, (3, 1, 4), generator=seeded(9))
    codes = model.generate(3, prompt_codes=prompt, generator=seeded())
    assert torch.equal(codes, prompt.expand(3, 4, 4))


# ---- the transformer reads the prompt in one pass


def record_decoder_inputs(model: VQPriorModel) -> list[tuple[int, int]]:
    """The (batch, length) of the input embeddings of every call of the transformer's decoder."""
    shapes = []

    def record(module, args, kwargs):
        shapes.append(tuple(kwargs["inputs_embeds"].shape[:2]))

    model.backbone.decoder.register_forward_pre_hook(record, with_kwargs=True)
    return shapes


@pytest.mark.parametrize(("code_shape", "length"), [((4, 4), 5), ((6,), 1), ((2, 3, 3), 17)])
@pytest.mark.parametrize("guidance", GUIDANCE, ids=GUIDANCE_IDS)
def test_the_cached_transformer_reads_start_token_and_prompt_in_one_decoder_call(
    code_shape, length, guidance
):
    model, scale = prompted_prior("transformer", code_shape, guidance)
    name, _, scale = guidance
    batch_size = 4 * {"unguided": 1, "null_label": 2, "class_mixture": NUM_CLASSES}[name]  # rows per pass
    total = num_codes(code_shape)
    shapes = record_decoder_inputs(model)
    model.generate(4, LABELS, guidance_scale=scale, prompt_codes=random_prompt(4, length))
    assert len(shapes) == total - length
    assert shapes == [(batch_size, length + 1)] + [(batch_size, 1)] * (total - length - 1)

    shapes.clear()
    model.generate(4, LABELS, guidance_scale=scale, prompt_codes=random_prompt(4, length), use_cache=False)
    assert shapes == [(batch_size, position + 1) for position in range(length, total)]

    shapes.clear()
    model.generate(4, LABELS, guidance_scale=scale)
    assert shapes == [(batch_size, 1)] * total


# ---- the progress bar


class RecordingBar:
    """Stands in for tqdm: records its total and the updates."""

    bars: list["RecordingBar"] = []

    def __init__(self, total=None, desc=None, disable=False):
        self.total, self.desc, self.disable, self.updates = total, desc, disable, 0
        RecordingBar.bars.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def update(self, n=1):
        self.updates += n


@pytest.mark.parametrize(("prior_type", "code_shape", "length"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("guidance", GUIDANCE[:2], ids=GUIDANCE_IDS[:2])
def test_the_progress_bar_counts_only_the_generated_codes(
    prior_type, code_shape, length, guidance, monkeypatch
):
    model, scale = prompted_prior(prior_type, code_shape, guidance)
    monkeypatch.setattr(RecordingBar, "bars", [])
    monkeypatch.setattr(modeling_prior, "tqdm", RecordingBar)
    total = num_codes(code_shape)
    model.generate(
        4, LABELS, guidance_scale=scale, prompt_codes=random_prompt(4, length), show_progress_bar=True
    )
    model.generate(4, LABELS, guidance_scale=scale, show_progress_bar=True)
    prompted, unprompted = RecordingBar.bars
    assert (prompted.total, prompted.updates, prompted.disable) == (total - length, total - length, False)
    assert (unprompted.total, unprompted.updates) == (total, total)


def test_the_pipelines_progress_bar_shows_the_generated_codes_only(capsys):
    vqvae = tiny_vqvae("image")
    pipe = VQSamplePipeline(model=vqvae, prior=tiny_prior(vqvae.config.code_shape))
    capsys.readouterr()
    pipe(prompt=PIL.Image.new("RGB", (16, 16), "red"), prompt_fraction=0.25, num_samples=2, seed=0)
    err = capsys.readouterr().err
    assert "Codes" in err and "12/12" in err and "16/16" not in err  # a 4x4 grid less its first row


# ---- bad prompt_codes


def zeros(*shape: int) -> torch.LongTensor:
    return torch.zeros(shape, dtype=torch.long)


TYPE_ERROR = r"prompt_codes must be an integer torch\.LongTensor of shape \(num_samples or 1, P\).* got "
SHAPE_ERROR = r"prompt_codes must have shape \(num_samples or 1, P\) with 1 <= P < "
NOTHING_LEFT = "a prompt as long as the whole grid leaves nothing to sample"
RANGE_ERROR = r"prompt_codes must lie in \[0, 16\) \(config.codebook_size\), got "
# (prior code_shape, prompt_codes, num_samples, error, message) for a prior over K=16 codes.
BAD_PROMPTS = [
    ((4, 4), zeros(2, 5).float(), 2, TypeError, TYPE_ERROR + r"dtype torch\.float32"),
    ((4, 4), zeros(2, 5).double(), 2, TypeError, TYPE_ERROR + r"dtype torch\.float64"),
    ((4, 4), zeros(2, 5).bool(), 2, TypeError, TYPE_ERROR + r"dtype torch\.bool"),
    ((4, 4), [[1, 2, 3]], 2, TypeError, TYPE_ERROR + r"\[\[1, 2, 3\]\]"),
    ((4, 4), np.zeros((2, 5), dtype=np.int64), 2, TypeError, TYPE_ERROR + "array"),
    (
        (4, 4),
        zeros(2, 2, 3),
        2,
        ValueError,
        SHAPE_ERROR + r"16, or \(num_samples or 1, n, 4\) with n < 4 .*\(2, 2, 3\)",
    ),
    ((4, 4), zeros(2, 1, 4, 1), 2, ValueError, SHAPE_ERROR + r"16.*got \(2, 1, 4, 1\)"),
    ((4, 4), zeros(5), 2, ValueError, SHAPE_ERROR + r"16.*got \(5,\)"),
    ((4, 4), torch.tensor(3), 2, ValueError, SHAPE_ERROR + r"16.*got \(\)"),
    ((4, 4), zeros(2, 0), 2, ValueError, SHAPE_ERROR + r"16.*got \(2, 0\)"),
    ((4, 4), zeros(2, 0, 4), 2, ValueError, SHAPE_ERROR + r"16.*got \(2, 0, 4\)"),
    ((4, 4), zeros(2, 16), 2, ValueError, NOTHING_LEFT),
    ((4, 4), zeros(2, 20), 2, ValueError, NOTHING_LEFT),
    ((4, 4), zeros(2, 4, 4), 2, ValueError, NOTHING_LEFT),
    ((6,), zeros(2, 6), 2, ValueError, SHAPE_ERROR + r"6 \(config.code_shape=\[6\]\), got \(2, 6\)"),
    ((6,), zeros(2, 1, 3), 2, ValueError, SHAPE_ERROR + r"6 \(config.code_shape=\[6\]\), got \(2, 1, 3\)"),
    ((2, 3, 3), zeros(2, 2, 3, 3), 2, ValueError, NOTHING_LEFT),
    (
        (2, 3, 3),
        zeros(2, 1, 3, 2),
        2,
        ValueError,
        SHAPE_ERROR + r"18, or \(num_samples or 1, n, 3, 3\) with n < 2",
    ),
    ((4, 4), zeros(3, 5), 2, ValueError, "prompt_codes holds 3 prompts but num_samples is 2"),
    ((4, 4), zeros(2, 5), 4, ValueError, "prompt_codes holds 2 prompts but num_samples is 4"),
    ((4, 4), torch.full((2, 5), K), 2, ValueError, RANGE_ERROR + r"\[16, 16\]"),
    ((4, 4), torch.tensor([[0, -1, 3]]), 2, ValueError, RANGE_ERROR + r"\[-1, 3\]"),
]
BAD_PROMPT_CASES = [
    (prior_type, *case)
    for case in BAD_PROMPTS
    for prior_type in (["transformer", "pixelcnn"] if len(case[0]) == 2 else ["transformer"])
]


@pytest.mark.parametrize(
    ("prior_type", "code_shape", "prompt", "num_samples", "error", "message"), BAD_PROMPT_CASES
)
def test_generate_refuses_bad_prompt_codes(
    prior_type, code_shape, prompt, num_samples, error, message, monkeypatch
):
    model = guidance_prior(prior_type, code_shape, num_classes=0)

    def never_called(*args, **kwargs):
        raise AssertionError("sampled despite a bad prompt")

    monkeypatch.setattr(model.backbone, "sample", never_called)
    with pytest.raises(error, match=message):
        model.generate(num_samples, prompt_codes=prompt)


# ---- the pipeline


def random_image(size=(24, 20), seed: int = 0) -> PIL.Image.Image:
    """A noise image larger than the model's 16x16 (the preprocessor resizes and crops it)."""
    rng = np.random.default_rng(seed)
    return PIL.Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def record_prompts(pipe: VQSamplePipeline, monkeypatch) -> list:
    """The `prompt_codes` of every `pipe.prior.generate` call (which still samples)."""
    prompts, generate = [], pipe.prior.generate

    def spy(*args, **kwargs):
        prompts.append(kwargs.get("prompt_codes"))
        return generate(*args, **kwargs)

    monkeypatch.setattr(pipe.prior, "generate", spy)
    return prompts


def expected_prompt_codes(vqvae, prompt, fraction: float) -> torch.LongTensor:
    """By hand: the validation preprocessing, the VQ-VAE's codes, the first round(fraction * axis) slices."""
    inputs = build_preprocessor(vqvae.config, train=False)(prompt)
    with torch.no_grad():
        codes = vqvae.encode(inputs[None]).codes
    return codes[:, : round(fraction * vqvae.config.code_shape[0])]


@pytest.fixture(scope="module")
def pipes():
    """`pipes(modality, prior_type)`: a tiny unconditional pipeline, built once per module."""
    built = {}

    def make(modality="image", prior_type="transformer") -> VQSamplePipeline:
        if (modality, prior_type) not in built:
            vqvae = tiny_vqvae(modality)
            prior = tiny_prior(vqvae.config.code_shape, prior_type)
            built[modality, prior_type] = quiet(VQSamplePipeline(model=vqvae, prior=prior))
        return built[modality, prior_type]

    return make


@pytest.mark.parametrize("prior_type", ["transformer", "pixelcnn"])
def test_the_pipeline_continues_an_image_prompt(pipes, prior_type, monkeypatch):
    pipe = pipes("image", prior_type)
    image = random_image()
    expected = expected_prompt_codes(pipe.model, image, 0.5)
    assert expected.shape == (1, 2, 4)
    prompts = record_prompts(pipe, monkeypatch)
    samples = stack(pipe(prompt=image, prompt_fraction=0.5, num_samples=3, seed=0, output_type="pt"))
    assert len(prompts) == 1 and torch.equal(prompts[0], expected)
    # The samples are the prior's continuations of those codes, decoded.
    codes = pipe.prior.generate(3, prompt_codes=expected, generator=seeded(0))
    assert torch.equal(codes[:, :2], expected.expand(3, -1, -1))
    with torch.no_grad():
        decoded = postprocess_samples(pipe.model.decode(codes), pipe.model.config, "pt")
    torch.testing.assert_close(samples, stack(decoded), rtol=0, atol=0)
    assert not torch.equal(samples, stack(pipe(num_samples=3, seed=0, output_type="pt")))


def test_the_pipeline_continues_a_prompt_with_guidance(monkeypatch):
    vqvae = tiny_vqvae("image")
    prior = tiny_prior(vqvae.config.code_shape, num_classes=3, condition_dropout=0.1)
    pipe = quiet(VQSamplePipeline(model=vqvae, prior=prior))
    image = random_image(seed=5)
    expected = expected_prompt_codes(vqvae, image, 0.5)
    prompts = record_prompts(pipe, monkeypatch)

    def run(**kwargs) -> torch.Tensor:
        return stack(
            pipe(prompt=image, class_labels=["cat", "dog", "frog"], seed=0, output_type="pt", **kwargs)
        )

    guided = run(guidance_scale=2.0)
    assert torch.equal(prompts[0], expected)
    codes = prior.generate(3, [0, 1, 2], guidance_scale=2.0, prompt_codes=expected, generator=seeded(0))
    assert torch.equal(codes[:, :2], expected.expand(3, -1, -1))
    with torch.no_grad():
        decoded = postprocess_samples(vqvae.decode(codes), vqvae.config, "pt")
    torch.testing.assert_close(guided, stack(decoded), rtol=0, atol=0)
    assert not torch.equal(guided, run())


def test_the_pipelines_prompt_fraction_defaults_to_half_and_sets_the_rows(pipes, monkeypatch):
    pipe = pipes("image")
    image = random_image(seed=1)
    prompts = record_prompts(pipe, monkeypatch)
    for fraction in (None, 0.25, 0.5, np.float64(0.75), 0.01, 0.99):
        pipe(
            prompt=image, num_samples=2, seed=0, **({} if fraction is None else {"prompt_fraction": fraction})
        )
    rows = [prompt.shape[1] for prompt in prompts]
    assert rows == [2, 1, 2, 3, 1, 3]
    assert all(
        torch.equal(prompt, expected_prompt_codes(pipe.model, image, 0.75)[:, : len(prompt[0])])
        for prompt in prompts
    )


def test_a_uint8_array_prompt_is_the_image_it_holds(pipes, monkeypatch):
    pipe = pipes("image")
    array = np.asarray(random_image(seed=2))
    prompts = record_prompts(pipe, monkeypatch)
    from_array = stack(pipe(prompt=array, prompt_fraction=0.25, num_samples=2, seed=0, output_type="pt"))
    from_image = stack(
        pipe(prompt=PIL.Image.fromarray(array), prompt_fraction=0.25, num_samples=2, seed=0, output_type="pt")
    )
    assert torch.equal(prompts[0], expected_prompt_codes(pipe.model, PIL.Image.fromarray(array), 0.25))
    assert prompts[0].shape == (1, 1, 4) and torch.equal(prompts[0], prompts[1])
    torch.testing.assert_close(from_array, from_image, rtol=0, atol=0)


def test_every_sampling_batch_gets_the_prompt(pipes, monkeypatch):
    pipe = pipes("image")
    image = random_image(seed=3)
    prompts = record_prompts(pipe, monkeypatch)
    samples = pipe(prompt=image, num_samples=5, batch_size=2, seed=0)
    assert len(samples) == 5 and len(prompts) == 3
    assert all(torch.equal(prompt, expected_prompt_codes(pipe.model, image, 0.5)) for prompt in prompts)


def test_the_pipeline_continues_an_audio_prompt_given_as_a_dict_or_a_wav_file(pipes, tmp_path, monkeypatch):
    pipe = pipes("audio")
    rng = np.random.default_rng(0)
    waveform = rng.uniform(-0.5, 0.5, (2, 300)).astype(np.float32)
    path = tmp_path / "prompt.wav"
    soundfile.write(path, waveform.T, SAMPLING_RATE, subtype="FLOAT")
    as_dict = {"array": waveform, "sampling_rate": SAMPLING_RATE}
    prompts = record_prompts(pipe, monkeypatch)
    outputs = [pipe(prompt=prompt, num_samples=2, seed=0) for prompt in (as_dict, str(path))]
    assert all(len(output) == 2 for output in outputs)
    expected = expected_prompt_codes(pipe.model, as_dict, 0.5)
    assert expected.shape == (1, 8)  # half of a 16-code recording
    assert torch.equal(prompts[0], expected)
    assert torch.equal(prompts[1], expected_prompt_codes(pipe.model, str(path), 0.5))
    assert (prompts[1] == expected).float().mean() > 0.8  # the same recording, through a file


def test_the_pipeline_continues_a_video_prompt_given_as_frames(pipes, monkeypatch):
    pipe = pipes("video")
    frames = [random_image((20, 20), seed=index) for index in range(6)]
    prompts = record_prompts(pipe, monkeypatch)
    clips = pipe(prompt=frames, num_samples=2, seed=0)
    assert len(clips) == 2
    expected = expected_prompt_codes(pipe.model, frames, 0.5)
    assert expected.shape == (1, 1, 4, 4)  # the code slice of the first 2 of 4 frames
    assert torch.equal(prompts[0], expected)


def test_encode_prompt_keeps_the_first_slices_of_the_codes():
    vqvae = tiny_vqvae("image")
    image = random_image(seed=4)
    inputs = build_preprocessor(vqvae.config, train=False)(image)
    with torch.no_grad():
        codes = vqvae.encode(inputs[None]).codes
    assert torch.equal(encode_prompt(vqvae, image, 0.75), codes[:, :3])
    assert torch.equal(encode_prompt(vqvae, image), codes[:, :2])


def test_prompt_slices_rounds_and_keeps_at_least_one_and_leaves_one():
    config = tiny_vqvae("image").config  # a 4x4 grid
    assert [prompt_slices(config, f) for f in (0.01, 0.2, 0.25, 0.5, 0.6, 0.75, 0.99)] == [
        1,
        1,
        1,
        2,
        2,
        3,
        3,
    ]
    one_row = tiny_vqvae("image", sample_size=[4, 16]).config
    assert one_row.code_shape[0] == 1
    with pytest.raises(ValueError, match="no first axis to split a prompt along"):
        prompt_slices(one_row, 0.5)


@pytest.mark.parametrize(
    ("modality", "prompt", "message"),
    [
        (
            "image",
            {"array": np.zeros(300), "sampling_rate": 8000},
            "prompt: cannot read dict as input to this image model",
        ),
        ("audio", PIL.Image.new("RGB", (16, 16)), "prompt: cannot read Image as input to this audio model"),
        ("image", "missing.png", "prompt: cannot read str .*No such file"),
        ("audio", "missing.wav", "prompt: cannot read str .*missing.wav"),
        ("video", [], "prompt is empty"),
        ("image", [], "prompt is empty"),
        ("image", "", "prompt is empty"),
    ],
    ids=[
        "audio-to-image",
        "image-to-audio",
        "missing-image",
        "missing-audio",
        "empty-video",
        "empty-list",
        "empty-path",
    ],
)
def test_the_pipeline_refuses_a_prompt_it_cannot_read(
    pipes, tmp_path, modality, prompt, message, monkeypatch
):
    pipe = pipes(modality)
    if isinstance(prompt, str) and prompt:
        prompt = str(tmp_path / prompt)
    record_prompts(pipe, monkeypatch)
    accepted = {
        "image": "a PIL image, an image file path or bytes, or a uint8 array",
        "audio": 'a {"array": (T,) or (C, T), "sampling_rate": int} dict',
        "video": "a list of frames (PIL images)",
    }[modality]
    with pytest.raises(ValueError, match=message) as error_info:
        pipe(prompt=prompt, num_samples=2, seed=0)
    assert accepted in str(error_info.value)


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, 1.5, -0.5, "x", float("nan"), True], ids=repr)
def test_the_pipeline_refuses_a_bad_prompt_fraction(pipes, fraction, monkeypatch):
    pipe = pipes("image")
    prompts = record_prompts(pipe, monkeypatch)
    with pytest.raises(ValueError, match=r"prompt_fraction must lie in \(0, 1\).*got " + repr(fraction)[:3]):
        pipe(prompt=random_image(), prompt_fraction=fraction, num_samples=2, seed=0)
    assert prompts == []


def test_the_pipeline_refuses_a_prompt_fraction_without_a_prompt(pipes, monkeypatch):
    pipe = pipes("image")
    prompts = record_prompts(pipe, monkeypatch)
    for fraction in (0.25, 0.5):  # 0.5, the default, too: a prompt_fraction says a prompt was meant
        with pytest.raises(ValueError, match=r"prompt_fraction is given without a prompt; pass prompt="):
            pipe(prompt_fraction=fraction, num_samples=2, seed=0)
    assert prompts == []


# ---- the command line


def sample_grid(folder, output_dir, *flags: str) -> np.ndarray:
    argv = ["sample", str(folder), "--num_samples", "2", "--seed", "0", "--output_dir", str(output_dir)]
    assert main([*argv, *flags]) == 0
    return np.asarray(PIL.Image.open(output_dir / "samples_grid.png"))


def test_the_cli_continues_a_prompt_file(tmp_path, capsys, monkeypatch):
    folder = save_model(tmp_path / "model", IMAGE_CONFIG)
    first, second = write_inputs(tmp_path / "inputs", "image")
    prompts, generate = [], VQPriorModel.generate

    def spy(self, *args, **kwargs):
        prompts.append(kwargs.get("prompt_codes"))
        return generate(self, *args, **kwargs)

    monkeypatch.setattr(VQPriorModel, "generate", spy)
    prompted = sample_grid(folder, tmp_path / "prompted", "--prompt", first)
    assert prompted.shape == (16, 2 * 16, 3)  # one row of two 16x16 samples
    assert "samples_grid.png" in capsys.readouterr().out
    model = VQVAEModel.from_pretrained(folder).eval()
    assert torch.equal(prompts[0], expected_prompt_codes(model, first, 0.5))
    np.testing.assert_array_equal(sample_grid(folder, tmp_path / "again", "--prompt", first), prompted)
    quarter = sample_grid(folder, tmp_path / "quarter", "--prompt", first, "--prompt_fraction", "0.25")
    assert torch.equal(prompts[2], expected_prompt_codes(model, first, 0.25))
    other = sample_grid(folder, tmp_path / "other", "--prompt", second)
    unprompted = sample_grid(folder, tmp_path / "none")
    assert prompts[4] is None
    for grid in (quarter, other, unprompted):
        assert not np.array_equal(grid, prompted)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--prompt", "{tmp}/missing.png"], "--prompt: no such file: '{tmp}/missing.png'."),
        (["--prompt", "{tmp}"], "--prompt: no such file: '{tmp}'."),
        (["--prompt", "{input}", "--prompt_fraction", "0"], "prompt_fraction must lie in (0, 1)"),
        (["--prompt", "{input}", "--prompt_fraction", "1"], "prompt_fraction must lie in (0, 1)"),
        (["--prompt_fraction", "0.3"], "prompt_fraction is given without a prompt"),
    ],
)
def test_the_cli_reports_a_bad_prompt_in_one_line(tmp_path, capsys, flags, message):
    folder = save_model(tmp_path / "model", IMAGE_CONFIG)
    (image,) = write_inputs(tmp_path / "inputs", "image")[:1]
    fill = {"tmp": str(tmp_path), "input": image}
    argv = [
        "sample",
        str(folder),
        "--output_dir",
        str(tmp_path / "out"),
        *(flag.format(**fill) for flag in flags),
    ]
    err = run_failing(argv, capsys)
    assert message.format(**fill) in err
    assert err.startswith("hf-vqvae sample: error: ") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
