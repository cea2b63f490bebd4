"""The Jinja template of the model cards `write_model_card` writes (huggingface_hub's `ModelCard.from_template`)."""

MODEL_CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

A VQ-VAE ([van den Oord et al., 2017](https://arxiv.org/abs/1711.00937)) that compresses {{ noun }} into \
a grid of discrete codes and decodes them back{% if prior_rows %}, with an autoregressive prior over those \
codes to sample new {{ noun }}{% endif %}. Built with the `hf_vqvae` package, whose models load as regular \
`transformers` models.

## Model

| | |
|---|---|
{%- for name, value in architecture_rows + prior_rows %}
| {{ name }} | {{ value }} |
{%- endfor %}

## How to use

```python
import torch

import hf_vqvae  # registers the hf_vqvae models and their pipeline with transformers
from hf_vqvae import VQVAEModel

model = VQVAEModel.from_pretrained("{{ model_id }}")
{{ input_name }} = torch.rand({{ batch_shape }}) * 2 - 1  # a batch scaled to [-1, 1]
codes = model.encode({{ input_name }}).codes  # torch.long, shape {{ codes_shape }}
reconstruction = model.decode(codes)
```

From files, the folder's processor prepares the input and turns outputs back into media:

```python
{{ processor_snippet | replace("{model_id}", model_id) }}
```
{%- if speaker_names %}

The decoder speaks with one of {{ speaker_names | length }} voices ({{ speaker_names | join(", ") }}); give one
(`speaker_ids`, a name or an id) to decode, and a whole recording of any length converts to another voice:

```python
reconstruction = model.decode(codes, speaker_ids="{{ speaker_names[0] }}")
from hf_vqvae.pipelines.recordings import convert_voice
converted = convert_voice(model, waveform, "{{ speaker_names[-1] }}")  # waveform: (channels, samples) at the model's rate
```

or from the command line: `hf-vqvae convert {{ model_id }} in.wav --speaker {{ speaker_names[-1] }} --output out.wav`.
{%- endif %}


Without `hf_vqvae` installed, transformers loads the models from the code saved in this folder (read it first: it
runs on your machine):

```python
from transformers import AutoModel{% if prior_rows %}, pipeline{% endif %}

model = AutoModel.from_pretrained("{{ model_id }}", trust_remote_code=True)
{%- if prior_rows %}
prior = AutoModel.from_pretrained("{{ model_id }}", subfolder="prior", trust_remote_code=True)
samples = model.decode(prior.generate(4{{ class_labels }}))  # in [-1, 1]
pipe = pipeline(model="{{ model_id }}", trust_remote_code=True)  # this folder's own pipeline (prompts in memory)
{%- endif %}
```
{%- if prior_rows %}

Sampling new {{ noun }} from the prior:

```python
from transformers import pipeline

pipe = pipeline("vq-sample", model="{{ model_id }}")
# samples: {{ pipeline_output }}
samples = pipe(num_samples=4{{ class_labels }}{{ speaker_argument }}, seed=0)
```
{%- endif %}

## Training

```bash
{{ training_command }}
```
{%- if training_facts %}
{% for fact in training_facts %}
- {{ fact }}
{%- endfor %}
{%- endif %}
{%- if metric_rows %}

## Evaluation

Measured on {{ eval_data }} with `hf_vqvae.evaluation.metrics`; signals are in [-1, 1].

| Metric | Value | How it was computed |
|---|---|---|
{%- for name, value, method in metric_rows %}
| {{ name }} | {{ value }} | {{ method }} |
{%- endfor %}
{%- endif %}
{%- if samples %}

## Samples
{%- for sample in samples %}

{{ sample }}
{%- endfor %}
{%- endif %}

## Intended use and limitations

{{ limitations }}
{%- for title, text in extra_sections.items() %}

## {{ title }}

{{ text }}
{%- endfor %}

"""
