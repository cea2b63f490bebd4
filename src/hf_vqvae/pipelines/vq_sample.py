"""The "vq-sample" pipeline: sample code grids from a prior and decode them with the VQ-VAE into images, audio or
video."""

import inspect
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import Pipeline

from ..models.number_checks import is_int
from ..models.prior.prior_inputs import check_class_labels, class_labels_as_tensor
from ..models.remote_code import PRIOR_SUBFOLDER
from ..models.vqvae.image_processing_vqvae import OUTPUT_TYPES
from ..models.vqvae.modeling_vqvae import VQVAEModel
from ..models.vqvae.speakers import speaker_ids_tensor
from .compression import compress, decompress
from .hub import push_output_dir
from .outputs import postprocess_samples
from .prior_loading import load_prior
from .prompting import encode_prompt, preprocess_one
from .remote_pipeline import add_pipeline_code

DEFAULT_NUM_SAMPLES = 4


class VQSamplePipeline(Pipeline):
    """
    Generate new data from a VQ-VAE and an autoregressive prior over its codes (the paper's second stage).

    A hub-ready folder (or Hub repo) holds the VQ-VAE at its root and the prior in `prior/`:

    ```python
    >>> import hf_vqvae
    >>> from transformers import pipeline
    >>> pipe = pipeline("vq-sample", model="org/vqvae-cifar10")
    >>> images = pipe(num_samples=4, class_labels=3, seed=0)  # four PIL images of class 3
    >>> images = pipe(num_samples=20, seed=0)  # two of each class: sample i has class i % num_classes
    >>> images = pipe(class_labels=["cat", "dog"], seed=0)  # one sample per label
    >>> images = pipe(class_labels="cat", num_samples=4, guidance_scale=3.0, seed=0)  # clearer cats
    ```

    `prompt` completes a given start instead of sampling from nothing: one image, recording or clip (a file path,
    a PIL image, a `{"array", "sampling_rate"}` dict, a list of frames), encoded by the VQ-VAE; the first
    `prompt_fraction` (default 0.5) of its code grid's first axis is kept (an image's top rows, a recording's
    start, a clip's first frames) and every sample continues it:

    ```python
    >>> completions = pipe(prompt=Image.open("cat.png"), class_labels="cat", num_samples=4, seed=0)
    ```

    `guidance_scale` is classifier-free guidance ([`VQPriorModel.generate`]): above 1, samples show their class
    more clearly, at some cost in variety. `guidance_schedule="linear"` or `"cosine"` raises the scale from 0 at a
    grid's first code to `guidance_scale` at its last (`"constant"`: the same scale everywhere). Left out, the
    prior's saved defaults apply (`prior/generation_config.json`; no guidance when it has none).

    Without `class_labels`, a class-conditional prior cycles through its classes (as `hf-vqvae sample` does), so
    that a bare `pipe()` shows what the model knows and each sample's class is known.

    A VQ-VAE whose decoder has speakers (`config.num_speakers`) speaks with `speaker_ids`: one id or name for all
    samples, or one per sample (`pipe(class_labels="7", speaker_ids="theo")`). Without them, samples cycle through
    the speakers as they cycle through classes.

    `pipe(...)` returns one item per sample: a `PIL.Image.Image` (images); `{"audio": np.ndarray (channels, samples),
    "sampling_rate": int}` (audio, like transformers' text-to-audio); a list of `PIL.Image.Image` frames (video).
    `output_type="np"` gives uint8 arrays `(H, W, C)` / `(T, H, W, C)`, `"pt"` float tensors in [0, 1] `(C, H, W)` /
    `(T, C, H, W)`; audio is a float array in [-1, 1] (a tensor for `"pt"`). Turn the progress bar off with
    `pipe.set_progress_bar_config(disable=True)`.

    `seed` seeds one generator that runs through the sampling batches in turn: the same seed and `batch_size` give
    the same samples, while another `batch_size` splits the draws differently and gives other samples. As in
    diffusers, a `torch.Generator` can be passed as `generator` instead (e.g. to draw several calls from one stream);
    a CPU generator also drives a GPU model.
    """

    # Nothing to load besides the two models: no tokenizer, processor or feature extractor.
    _load_tokenizer = False
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False

    def __init__(self, model: VQVAEModel, prior: torch.nn.Module | None = None, **kwargs):
        # By model type, not class: loaded as remote code, the model's class and the one this module imports come
        # from different copies of the folder's code.
        if getattr(model.config, "model_type", None) != VQVAEModel.config_class.model_type:
            raise ValueError(
                f"vq-sample takes the folder with the VQ-VAE at its root and the prior in `prior/`; got a "
                f"{type(model).__name__} (for a prior's own folder, pass its parent folder)."
            )
        super().__init__(model=model, **kwargs)
        self.prior = (prior if prior is not None else load_prior(model)).to(self.device).eval()
        self.prior.config.check_matches(model.config)
        self._progress_bar_config = {}

    def set_progress_bar_config(self, disable: bool = False) -> None:
        """Turn the sampling progress bar off (`disable=True`) or on."""
        self._progress_bar_config = {"disable": disable}

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """Write the pipeline folder this pipeline loads from: the VQ-VAE at its root and the prior in `prior/`.

        transformers' `Pipeline.save_pretrained` would instead record the task "vq-sample" as remote code in the
        VQ-VAE's config (so that loading the folder asks for `trust_remote_code` even with the package installed,
        which registers the task itself) and leave the prior out. The pipeline's code is saved under its own task
        name instead (`remote_pipeline.py`), for `pipeline(model=folder, trust_remote_code=True)` where the package
        is not installed. `push_to_hub` saves through this method too;
        `save_pretrained(..., push_to_hub=True)` uploads the whole folder once (each model pushing its own would
        put the prior over the VQ-VAE at the repo's root).
        """
        if Path(save_directory).exists() and not Path(save_directory).is_dir():
            # transformers only logs this and returns, and the prior then fails on the path `<file>/prior`.
            raise NotADirectoryError(
                f"save_directory {str(save_directory)!r} is a file; give a folder to write the pipeline to."
            )
        push_to_hub = kwargs.pop("push_to_hub", False)
        repo_id = kwargs.pop("repo_id", Path(save_directory).name)
        token = kwargs.pop("token", None)
        self.model.save_pretrained(save_directory, **kwargs)
        self.prior.save_pretrained(Path(save_directory) / PRIOR_SUBFOLDER, **kwargs)
        if kwargs.get("is_main_process", True):
            add_pipeline_code(VQSamplePipeline, save_directory)
        if push_to_hub:
            push_output_dir(save_directory, repo_id, token)

    def __call__(self, inputs=None, *, batch_size: int | None = None, **kwargs):
        # `inputs` may be omitted for unconditional sampling; `batch_size` is the sampling batch, not transformers'
        # DataLoader batching (which needs a tokenizer or feature extractor).
        batch_size = batch_size if batch_size is not None else self._batch_size  # as given to pipeline()
        if batch_size is not None and not is_positive_int(batch_size):
            raise ValueError(f"batch_size must be None or an integer >= 1, got {batch_size!r}.")
        if inputs is not None:
            # Given positionally, the labels are the conditioning of one call; transformers would treat a list
            # as a batch of calls.
            if kwargs.get("class_labels") is not None:
                raise ValueError(
                    "Pass class labels either as the first argument or as `class_labels`, not both."
                )
            kwargs["class_labels"] = inputs
        batch_size = int(batch_size) if batch_size is not None else None
        check_call_arguments(kwargs)
        return super().__call__(None, sampling_batch_size=batch_size, **kwargs)

    def _sanitize_parameters(
        self,
        num_samples=None,
        class_labels=None,
        temperature=None,
        top_k=None,
        top_p=None,
        seed=None,
        generator=None,
        sampling_batch_size=None,
        output_type=None,
        guidance_scale=None,
        prompt=None,
        prompt_fraction=None,
        speaker_ids=None,
        compile=None,
        guidance_schedule=None,
    ):
        preprocess = {
            k: v
            for k, v in {
                "num_samples": num_samples,
                "class_labels": class_labels,
                "prompt": prompt,
                "prompt_fraction": prompt_fraction,
                "speaker_ids": speaker_ids,
            }.items()
            if v is not None
        }
        if seed is not None and generator is not None:
            raise ValueError("Pass either `seed` or `generator`, not both.")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}.")
        if seed is not None and not (is_int(seed) and -(2**63) <= seed < 2**64):
            raise ValueError(f"seed must be an integer in [-2**63, 2**64), got {seed!r}.")
        forward = {
            k: v
            for k, v in {
                "temperature": temperature,
                "top_k": top_k,
                "top_p": top_p,
                "seed": seed,
                "generator": generator,
                "batch_size": sampling_batch_size,
                "guidance_scale": guidance_scale,
                "guidance_schedule": guidance_schedule,
                "compile": compile,
            }.items()
            if v is not None
        }
        if output_type is not None and output_type not in OUTPUT_TYPES:  # before sampling, not after
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        postprocess = {"output_type": output_type} if output_type is not None else {}
        return preprocess, forward, postprocess

    def preprocess(
        self,
        inputs=None,
        num_samples: int | None = None,
        class_labels=None,
        prompt=None,
        prompt_fraction: float | None = None,
        speaker_ids=None,
    ) -> dict:
        """1. Check inputs and prepare the conditioning: one class label per sample, or None, the codes a
        prompt fixes, and one speaker per sample for a decoder with speakers. Without `num_samples`, one sample per label given as a list, else `DEFAULT_NUM_SAMPLES`.
        (`inputs` is always None: `__call__` passes positional labels on as `class_labels`.)"""
        prompt_codes = None
        if prompt_fraction is not None and prompt is None:
            raise ValueError("prompt_fraction is given without a prompt; pass prompt=... to continue.")
        if prompt is not None:
            prompt_codes = encode_prompt(
                self.model, prompt, 0.5 if prompt_fraction is None else prompt_fraction
            )
        if num_samples is None:
            num_samples = len(class_labels) if is_label_list(class_labels) else DEFAULT_NUM_SAMPLES
            if num_samples == 0:
                raise ValueError("class_labels is empty: give one label per sample, or one label for all.")
        if not is_positive_int(num_samples):
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}.")
        class_labels = self._label_tensor(class_labels, num_samples)
        # All labels are checked here, before any batch is sampled (generate() sees one batch at a time).
        check_class_labels(class_labels, num_samples, self.prior.config.num_classes)
        num_speakers = self.model.config.num_speakers
        if speaker_ids is None and num_speakers:
            speaker_ids = torch.arange(num_samples) % num_speakers
        speaker_ids = speaker_ids_tensor(self.model.config, speaker_ids, int(num_samples))
        return {
            "num_samples": int(num_samples),
            "class_labels": class_labels,
            "prompt_codes": prompt_codes,
            "speaker_ids": speaker_ids,
        }

    def _label_tensor(self, class_labels, num_samples: int) -> torch.LongTensor | None:
        """Class names become ids; one int or name applies to every sample; no labels cycle through a conditional
        prior's classes. Checking is left to `check_class_labels`, so an unconditional prior reports that it takes
        no labels at all."""
        num_classes = self.prior.config.num_classes
        if num_classes == 0:
            return class_labels
        if class_labels is None:
            return torch.arange(num_samples) % num_classes
        if isinstance(class_labels, np.ndarray):
            class_labels = class_labels.tolist()
        if isinstance(class_labels, str):
            class_labels = [class_labels] * num_samples
        if isinstance(class_labels, Sequence):
            names = self.class_ids_by_name()
            unknown = sorted({label for label in class_labels if isinstance(label, str)} - names.keys())
            if unknown:
                raise ValueError(
                    f"Unknown class names {unknown}; this prior knows {sorted(names)} "
                    "(config.label2id / config.id2label)."
                )
            class_labels = [names[label] if isinstance(label, str) else label for label in class_labels]
        return class_labels_as_tensor(class_labels, num_samples)

    def class_id(self, label: int | str) -> int:
        """One class, given by id or name, as its id; a `ValueError` for an unknown name or an id out of range."""
        class_id = int(self._label_tensor([label], 1)[0])
        check_class_labels(torch.tensor([class_id]), 1, self.prior.config.num_classes)
        return class_id

    def class_ids_by_name(self) -> dict[str, int]:
        """The prior's class names and their ids. transformers fills `label2id` only when it is given, so a
        config that sets only `id2label` still names its classes."""
        config = self.prior.config
        names = {name: int(index) for index, name in (config.id2label or {}).items()}
        return {**names, **{name: int(index) for name, index in (config.label2id or {}).items()}}

    def compress(self, inputs, class_labels=None, speaker_ids=None) -> bytes:
        """
        A bitstream of one input (an image, recording or clip, as `prompt` takes it, brought to the model's size as
        its processor does; or a float tensor already in the model's input layout and range): its codes
        entropy-coded with the prior (`pipelines/compression.py`). A class label (id or name) conditions the prior
        and is stored in the file; without one, a conditional prior codes with its unconditional distribution.
        """
        label = None if class_labels is None else self.class_id(class_labels)
        if not (isinstance(inputs, torch.Tensor) and inputs.is_floating_point()):
            inputs = preprocess_one(self.model, inputs)
        speaker = None
        if speaker_ids is not None:
            speaker = int(speaker_ids_tensor(self.model.config, speaker_ids, 1)[0])
        return compress(self.model, self.prior, inputs, label, speaker)

    def decompress(self, data: bytes, output_type: str = "pil"):
        """The input a [`compress`] bitstream holds, decoded, as `output_type` (one item, as `pipe(...)` gives)."""
        return postprocess_samples(
            decompress(self.model, self.prior, data)[None], self.model.config, output_type
        )[0]

    def _forward(
        self,
        model_inputs: dict,
        temperature=1.0,
        top_k=None,
        top_p=None,
        seed=None,
        generator=None,
        batch_size=None,
        guidance_scale=None,
        compile=False,
        guidance_schedule=None,
    ):
        """2. Sample code grids from the prior, batch by batch (`compile=True`: the transformer prior's static cache
        and compiled step, see `VQPriorModel.generate`); 3. decode them with the VQ-VAE."""
        num_samples, class_labels = model_inputs["num_samples"], model_inputs["class_labels"]
        batch_size = batch_size or num_samples
        if generator is None and seed is not None:
            # A fresh generator per call, so a seed given to pipeline() reproduces every call.
            generator = torch.Generator(device=self.device).manual_seed(int(seed))
        decoded = []
        for start in range(0, num_samples, batch_size):
            count = min(batch_size, num_samples - start)
            labels = class_labels[start : start + count].to(self.device) if class_labels is not None else None
            prompt_codes = model_inputs["prompt_codes"]
            codes = self.prior.generate(
                count,
                class_labels=labels,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                generator=generator,
                guidance_scale=guidance_scale,
                guidance_schedule=guidance_schedule,
                prompt_codes=prompt_codes,
                compile=compile,
                show_progress_bar=not self._progress_bar_config.get("disable", False),
            )
            speakers = model_inputs["speaker_ids"]
            speakers = speakers[start : start + count].to(self.device) if speakers is not None else None
            decoded.append(self.model.decode(codes, speaker_ids=speakers).float().clamp(-1, 1))
        return {"samples": torch.cat(decoded)}

    def postprocess(self, model_outputs: dict, output_type: str = "pil") -> list:
        """4. Convert [-1, 1] tensors to the modality's output type."""
        return postprocess_samples(model_outputs["samples"], self.model.config, output_type)


def check_call_arguments(kwargs: dict) -> None:
    """Raises a `TypeError` naming the arguments that `pipe(...)` does not take, and those it takes."""
    accepted = set(inspect.signature(VQSamplePipeline._sanitize_parameters).parameters) - {"self"}
    accepted = (accepted - {"sampling_batch_size"}) | {"batch_size"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        hint = (
            " An autoregressive prior has no denoising steps: it draws one code per position."
            if "num_inference_steps" in unknown
            else ""
        )
        raise TypeError(f"vq-sample got unexpected argument(s) {unknown}; it takes {sorted(accepted)}.{hint}")


def is_positive_int(value) -> bool:
    return is_int(value) and value >= 1


def is_label_list(class_labels) -> bool:
    """Whether `class_labels` gives one label per sample (a list, array or 1-D tensor), not one for all."""
    if isinstance(class_labels, (np.ndarray, torch.Tensor)):
        return class_labels.ndim == 1
    return isinstance(class_labels, Sequence) and not isinstance(class_labels, str)


def per_class_labels(num_classes: int, per_class: int) -> torch.LongTensor | None:
    """`per_class` labels of each class in turn (`[0, 0, 1, 1, ...]`), for sample sets shown one row per class;
    `None` for an unconditional prior."""
    return torch.arange(num_classes).repeat_interleave(per_class) if num_classes else None
