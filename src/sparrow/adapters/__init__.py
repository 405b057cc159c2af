"""One model interface for Sparrow's trainer, eval and serve: Sparrow's own ``VideoLLM`` and HF-native
video/image LLMs (Qwen2-VL / Qwen2.5-VL, LLaVA-OneVision, Idefics3 / SmolVLM) behind it.

What a served model offers (``VideoLLM`` already does): ``parts()`` (``vision`` / ``connector`` / ``lm``,
disjoint), ``adapters`` (LoRA per part), ``forward(**batch, logits_at=..., cache=..., use_cache=...)``
returning ``.logits``, ``save_pretrained(dir, processor=...)``, ``eos_token_ids``, ``pad_token_id``,
``device``, ``supports_packing``. Its processor turns a record into inputs with Sparrow's frame
selection (``processor(sample, root, sampling=..., generation=...)``) for ``sparrow.model.collate``.

from sparrow.adapters import HFModelSpec, build, load_pretrained
model, processor = build(HFModelSpec.from_dict({"hf": "/models/Qwen2-VL-2B-Instruct"}))
model, processor = load_pretrained("runs/x/final")   # Sparrow or HF-native, whichever it is

Modules: spec (what names a model), tokens, pixels (frames -> the families' pixel layouts), processor
(record -> inputs), parts (disjoint part views), model (the shared forward), qwen2_vl, llava_onevision,
idefics3 (the families), checkpoint (save / load / peft folder), build (build, load, dispatch).
"""

from sparrow.adapters.build import (
    ADAPTERS,
    build,
    build_from_recipe,
    lm_width,
    load_pretrained,
    load_weights_into,
)
from sparrow.adapters.model import HFVideoLM, PackingError
from sparrow.adapters.processor import HFProcessor
from sparrow.adapters.spec import AdapterError, HFModelSpec, is_hf_checkpoint, is_hf_model_mapping

__all__ = [
    "ADAPTERS",
    "AdapterError",
    "HFModelSpec",
    "HFProcessor",
    "HFVideoLM",
    "PackingError",
    "build",
    "build_from_recipe",
    "is_hf_checkpoint",
    "is_hf_model_mapping",
    "lm_width",
    "load_pretrained",
    "load_weights_into",
]
