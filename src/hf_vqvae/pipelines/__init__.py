"""Using trained models: the vq-sample pipeline, prompts, whole recordings and voice conversion, writing samples
and Hub folders."""
