"""A procedural video-QA world: real MP4 videos of coloured shapes and words, multiple-choice questions
in seven categories with exact evidence and curation ground truth, noisy transcripts and a long-text
corpus — Sparrow's embedded default data (``sparrow world``). See docs/world.md."""

from sparrow.world.config import CATEGORIES, PRESETS, SPLITS, WorldConfig, WorldError, preset_config
from sparrow.world.generate import WorldSummary, generate_world, plan_world
from sparrow.world.questions import Draft, Question, draft_questions, finalize
from sparrow.world.scene import Scene, ShapeObject, WordEvent, plan_scene

__all__ = [
    "CATEGORIES",
    "PRESETS",
    "SPLITS",
    "Draft",
    "Question",
    "Scene",
    "ShapeObject",
    "WordEvent",
    "WorldConfig",
    "WorldError",
    "WorldSummary",
    "draft_questions",
    "finalize",
    "generate_world",
    "plan_scene",
    "plan_world",
    "preset_config",
]
