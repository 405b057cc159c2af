"""The video-LLM: configs, connectors, vision towers, the model, the processor and a tiny tokenizer.

from sparrow.model import VideoLLMConfig, VideoLLM, Processor, collate, model_inputs, load_pretrained
cfg = VideoLLMConfig.from_yaml("configs/tiny/model.yaml")
processor = Processor(cfg)
model = VideoLLM(cfg, tokenizer=processor.tokenizer)
batch = collate([processor(sample, root)], processor.pad_token_id)
logits = model(**model_inputs(batch)).logits  # the batch without its labels

Modules: config, vision, connector, videollm (the model), processor (record -> inputs), media (media
item -> frames, the clip cache), collate (the one padding code), checkpoint (the format on disk),
inference (scoring, generation), tokenizer.
"""

from sparrow.model.collate import IGNORE_INDEX, collate, model_inputs, pad_left, pad_right
from sparrow.model.config import (
    ConfigError,
    ConnectorConfig,
    LMConfig,
    SamplingConfig,
    VideoLLMConfig,
    VisionConfig,
)
from sparrow.model.media import ClipCache
from sparrow.model.processor import Processor, ProcessorError
from sparrow.model.tokenizer import build_tiny_tokenizer, load_tokenizer
from sparrow.model.videollm import VideoLLM, load_pretrained

__all__ = [
    "IGNORE_INDEX",
    "ClipCache",
    "ConfigError",
    "ConnectorConfig",
    "LMConfig",
    "Processor",
    "ProcessorError",
    "SamplingConfig",
    "VideoLLM",
    "VideoLLMConfig",
    "VisionConfig",
    "build_tiny_tokenizer",
    "collate",
    "load_pretrained",
    "load_tokenizer",
    "model_inputs",
    "pad_left",
    "pad_right",
]
