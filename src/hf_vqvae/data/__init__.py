"""Data for hf_vqvae: loading raw datasets, per-modality preprocessing, and built-in offline datasets.

```python
from hf_vqvae.data import build_preprocessor, collate_examples, load_raw_dataset, prepare_dataset
from hf_vqvae.data import split_train_validation

raw = load_raw_dataset(dataset_name="builtin:shapes")  # or a Hub name, a local folder, parquet files
raw_train, raw_eval = split_train_validation(raw, validation_split_percentage=5)
train = prepare_dataset(raw_train, build_preprocessor(config, train=True), label_column="label")
loader = DataLoader(train, batch_size=32, shuffle=True, collate_fn=collate_examples)
```

Modules: `loading` (Hub / folder / files / built-in), `folders` (audio and video folders), `splits`,
`columns` (finding and checking columns), `image` / `audio` / `video` (decode + preprocess), `cropping`,
`preprocessing` (dataset transform + collate), `robustness` (skipping bad examples), `builtin`,
`moving_mnist`, `idx` (MNIST-format files).
"""

from .audio import (
    AudioPreprocessor,
    crop_or_pad,
    decode_audio,
    merge_windows,
    mix_channels,
    resample,
    split_into_windows,
)
from .builtin import (
    BUILTIN_DATASETS,
    SHAPE_KINDS,
    TONE_KINDS,
    load_builtin_dataset,
    make_digits,
    make_moving_digits,
    make_shapes,
    make_sprites,
    make_tones,
)
from .columns import (
    DEFAULT_DATA_COLUMNS,
    disable_media_decoding,
    encode_speaker_column,
    feature_modality,
    resolve_data_column,
    resolve_label_names,
)
from .folders import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, load_media_folder
from .idx import FASHION_MNIST_LABELS, read_fashion_mnist, read_idx
from .image import ImagePreprocessor, decode_image
from .loading import load_raw_dataset
from .moving_mnist import bouncing_trajectories, make_moving_mnist
from .preprocessing import (
    LABEL_KEY,
    MODEL_INPUT_NAMES,
    SPEAKER_KEY,
    PreprocessTransform,
    build_preprocessor,
    collate_examples,
    prepare_dataset,
)
from .robustness import BadExampleError, BadExampleTracker, TooManyBadExamplesError
from .splits import split_train_validation
from .video import VideoPreprocessor, clip_frame_indices, decode_video

__all__ = [
    "AUDIO_EXTENSIONS",
    "BUILTIN_DATASETS",
    "DEFAULT_DATA_COLUMNS",
    "FASHION_MNIST_LABELS",
    "LABEL_KEY",
    "MODEL_INPUT_NAMES",
    "SHAPE_KINDS",
    "SPEAKER_KEY",
    "TONE_KINDS",
    "VIDEO_EXTENSIONS",
    "AudioPreprocessor",
    "BadExampleError",
    "BadExampleTracker",
    "ImagePreprocessor",
    "PreprocessTransform",
    "TooManyBadExamplesError",
    "VideoPreprocessor",
    "bouncing_trajectories",
    "build_preprocessor",
    "clip_frame_indices",
    "collate_examples",
    "crop_or_pad",
    "decode_audio",
    "decode_image",
    "decode_video",
    "disable_media_decoding",
    "encode_speaker_column",
    "feature_modality",
    "load_builtin_dataset",
    "load_media_folder",
    "load_raw_dataset",
    "make_digits",
    "make_moving_digits",
    "make_moving_mnist",
    "make_shapes",
    "make_sprites",
    "make_tones",
    "merge_windows",
    "mix_channels",
    "prepare_dataset",
    "read_fashion_mnist",
    "read_idx",
    "resample",
    "resolve_data_column",
    "resolve_label_names",
    "split_into_windows",
    "split_train_validation",
]
