"""hf_vqvae: VQ-VAE and autoregressive code priors as Hugging Face models, for images, audio and video.

Importing the package registers its configs and models with transformers' Auto classes, so that
`AutoModel.from_pretrained(folder)` works without `trust_remote_code`.
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoImageProcessor, AutoModel, AutoVideoProcessor
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.utils import is_torchvision_available

from .models.prior.configuration_prior import VQPriorConfig
from .models.prior.modeling_prior import VQPriorModel, VQPriorOutput, VQPriorPreTrainedModel
from .models.vqvae.configuration_vqvae import VQVAEConfig
from .models.vqvae.feature_extraction_vqvae import VQVAEFeatureExtractor
from .models.vqvae.image_processing_vqvae import VQVAEImageProcessor
from .models.vqvae.modeling_vqvae import VQVAEEncoderOutput, VQVAEModel, VQVAEOutput, VQVAEPreTrainedModel
from .models.vqvae.quantization import QuantizerOutput, VectorQuantizer
from .models.vqvae.video_processing_vqvae import VQVAEVideoProcessor
from .pipelines.vq_sample import VQSamplePipeline

__version__ = "0.1.0"

AutoConfig.register(VQVAEConfig.model_type, VQVAEConfig, exist_ok=True)
AutoModel.register(VQVAEConfig, VQVAEModel, exist_ok=True)
AutoConfig.register(VQPriorConfig.model_type, VQPriorConfig, exist_ok=True)
AutoModel.register(VQPriorConfig, VQPriorModel, exist_ok=True)
# One config, three processors: a folder's preprocessor file names the one of its modality.
AutoImageProcessor.register(VQVAEConfig, slow_image_processor_class=VQVAEImageProcessor, exist_ok=True)
AutoFeatureExtractor.register(VQVAEConfig, VQVAEFeatureExtractor, exist_ok=True)
if is_torchvision_available():  # transformers' AutoVideoProcessor needs torchvision
    AutoVideoProcessor.register(VQVAEConfig, VQVAEVideoProcessor, exist_ok=True)
PIPELINE_REGISTRY.register_pipeline(
    "vq-sample", pipeline_class=VQSamplePipeline, pt_model=AutoModel, type="multimodal"
)

__all__ = [
    "QuantizerOutput",
    "VQPriorConfig",
    "VQPriorModel",
    "VQPriorOutput",
    "VQPriorPreTrainedModel",
    "VQSamplePipeline",
    "VQVAEConfig",
    "VQVAEEncoderOutput",
    "VQVAEFeatureExtractor",
    "VQVAEImageProcessor",
    "VQVAEModel",
    "VQVAEOutput",
    "VQVAEPreTrainedModel",
    "VQVAEVideoProcessor",
    "VectorQuantizer",
    "__version__",
]
