"""The video-LLM: configs, connectors, vision towers, the model, the processor and a tiny tokenizer.

from sparrow.model import VideoLLMConfig, VideoLLM, Processor, load_pretrained
cfg = VideoLLMConfig.from_yaml("configs/tiny/model.yaml")
processor = Processor(cfg)
model = VideoLLM(cfg, tokenizer=processor.tokenizer)
batch = processor.collate([processor(sample, root)])
logits = model(**batch).logits
"""

from sparrow.model.config import (
    ConfigError,
    ConnectorConfig,
    LMConfig,
    SamplingConfig,
    VideoLLMConfig,
    VisionConfig,
)
from sparrow.model.processor import IGNORE_INDEX, Processor, ProcessorError
from sparrow.model.tokenizer import build_tiny_tokenizer, load_tokenizer
from sparrow.model.videollm import VideoLLM, load_pretrained

__all__ = [
    "IGNORE_INDEX",
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
    "load_pretrained",
    "load_tokenizer",
]
