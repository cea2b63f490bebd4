"""The hf_vqvae Space: sample from the released models and see how they encode a file.

    python space/app.py [--port 7860]      # or `make space`

The models come from `HF_VQVAE_SPACE_MODELS` (comma-separated folders or Hub repo ids), by default the released
folders in `model_cards/`; on the Hub the same app runs with repo ids and no internet beyond the Hub.
"""

import argparse
import tempfile

import gradio as gr
from handlers import encode, model_choices, model_locations, sample

from hf_vqvae.models.prior.guidance import GUIDANCE_SCHEDULES

WORK_DIR = tempfile.mkdtemp(prefix="hf_vqvae_space_")
TITLE = "hf_vqvae: VQ-VAE and its prior"


def page_errors(handler):
    """Shows a handler's `ValueError` as a readable message in the page (the app keeps serving)."""

    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except ValueError as error:
            raise gr.Error(str(error), print_exception=False) from error

    wrapped.__name__ = handler.__name__
    return wrapped


def sample_controls(name: str):
    """The class, speaker and guidance controls of a model, and whether it takes a prompt."""
    choices = model_choices(name)
    return (
        gr.Dropdown(
            choices=choices.classes,
            value=choices.classes[0] if choices.classes else None,
            visible=bool(choices.classes),
        ),
        gr.Dropdown(
            choices=choices.speakers,
            value=choices.speakers[0] if choices.speakers else None,
            visible=bool(choices.speakers),
        ),
        gr.Slider(value=choices.default_guidance, visible=bool(choices.classes)),
        gr.Dropdown(value=choices.default_schedule, visible=bool(choices.classes)),
        gr.Image(visible=choices.modality != "audio"),
        gr.Audio(visible=choices.modality == "audio"),
    )


# Gradio reads a `gr.Progress` default to show a progress bar that follows the sampler's tqdm bar.
PROGRESS = gr.Progress(track_tqdm=True)


def run_sample(
    name,
    class_name,
    speaker,
    guidance,
    schedule,
    temperature,
    seed,
    num_samples,
    prompt,
    progress=PROGRESS,
):
    return page_errors(sample)(
        name, class_name, speaker, guidance, schedule, temperature, seed, num_samples, prompt, WORK_DIR
    )


def encode_outputs(name: str):
    """The Encode tab shows audio players for a speech model, the original | reconstruction picture otherwise."""
    audio = model_choices(name).modality == "audio"
    return gr.Image(visible=not audio), gr.Audio(visible=audio), gr.Audio(visible=audio)


def run_encode(name, upload):
    return page_errors(encode)(name, upload, WORK_DIR)


def build() -> gr.Blocks:
    names = list(model_locations())
    first = model_choices(names[0])
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(
            f"# {TITLE}\nA VQ-VAE turns images, speech and video into a grid of discrete codes; an autoregressive "
            "prior over those codes samples new ones. Pick a released model below."
        )
        with gr.Tab("Sample", elem_id="sample-tab"):
            with gr.Row():
                with gr.Column():
                    model = gr.Dropdown(names, value=names[0], label="Model", elem_id="sample-model")
                    class_name = gr.Dropdown(
                        first.classes,
                        value=(first.classes or [None])[0],
                        label="Class",
                        elem_id="sample-class",
                        visible=bool(first.classes),
                    )
                    speaker = gr.Dropdown(
                        first.speakers,
                        value=(first.speakers or [None])[0],
                        label="Speaker",
                        elem_id="sample-speaker",
                        visible=bool(first.speakers),
                    )
                    guidance = gr.Slider(
                        0,
                        16,
                        value=first.default_guidance,
                        step=0.5,
                        label="Guidance scale",
                        elem_id="sample-guidance",
                        visible=bool(first.classes),
                    )
                    schedule = gr.Dropdown(
                        list(GUIDANCE_SCHEDULES),
                        value=first.default_schedule,
                        label="Guidance schedule (linear, cosine: from 0 at the first code up to the scale; "
                        "constant at scale 1: no guidance)",
                        elem_id="sample-schedule",
                        visible=bool(first.classes),
                    )
                    temperature = gr.Slider(
                        0.5, 1.5, value=1.0, step=0.05, label="Temperature", elem_id="sample-temperature"
                    )
                    seed = gr.Textbox(value="0", label="Seed", elem_id="sample-seed")
                    num_samples = gr.Slider(
                        1, 16, value=4, step=1, label="Number of samples", elem_id="sample-count"
                    )
                    prompt = gr.File(
                        label="Prompt (optional): an image to complete, a recording to continue, a clip to extend",
                        type="filepath",
                        elem_id="sample-prompt",
                    )
                    button = gr.Button("Sample", variant="primary", elem_id="sample-button")
                with gr.Column():
                    image = gr.Image(
                        label="Samples",
                        type="filepath",
                        elem_id="sample-image",
                        visible=first.modality != "audio",
                    )
                    audio = gr.Audio(
                        label="Samples, one after another",
                        elem_id="sample-audio",
                        visible=first.modality == "audio",
                    )
                    status = gr.Markdown(elem_id="sample-status")
            model.change(sample_controls, model, [class_name, speaker, guidance, schedule, image, audio])
            button.click(
                run_sample,
                [model, class_name, speaker, guidance, schedule, temperature, seed, num_samples, prompt],
                [image, audio, status],
            )
        with gr.Tab("Encode", elem_id="encode-tab"):
            with gr.Row():
                with gr.Column():
                    encode_model = gr.Dropdown(names, value=names[0], label="Model", elem_id="encode-model")
                    upload = gr.File(
                        label="An image, recording or clip", type="filepath", elem_id="encode-file"
                    )
                    encode_button = gr.Button("Encode", variant="primary", elem_id="encode-button")
                with gr.Column():
                    speech = first.modality == "audio"
                    pair = gr.Image(
                        label="Original | reconstruction",
                        type="filepath",
                        elem_id="encode-pair",
                        visible=not speech,
                    )
                    original_audio = gr.Audio(
                        label="Original", elem_id="encode-original-audio", visible=speech
                    )
                    reconstructed_audio = gr.Audio(
                        label="Reconstruction", elem_id="encode-reconstruction-audio", visible=speech
                    )
                    grid = gr.Image(
                        label="Code grid (one colour per code)", type="pil", elem_id="encode-grid"
                    )
                    summary = gr.Markdown(elem_id="encode-summary")
            encode_model.change(encode_outputs, encode_model, [pair, original_audio, reconstructed_audio])
            encode_button.click(
                run_encode, [encode_model, upload], [pair, original_audio, reconstructed_audio, grid, summary]
            )
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args()
    build().queue().launch(server_name=args.host, server_port=args.port, show_error=True)


if __name__ == "__main__":
    main()
