"""How questions are worded: the instruction-diversity knob.

``templates`` uses one fixed wording per question type, like real video QA sets built from a handful
of templates (Sparrow's "low instruction diversity" problem). ``paraphrases`` draws a wording from
several core paraphrases combined with lead-ins, so the same content comes in many surface forms.
The first core wording of each type is the template.
"""

from __future__ import annotations

import random

CORE: dict[str, list[str]] = {
    "colour_of_shape": [
        "What colour is the {shape}?",
        "Which colour does the {shape} have?",
        "The {shape} in the video is which colour?",
        "What is the colour of the {shape}?",
        "Name the colour of the {shape} that appears in the video.",
        "Of what colour is the {shape} shown in the clip?",
    ],
    "shape_of_colour": [
        "What shape is the {colour} object?",
        "Which shape is drawn in {colour}?",
        "The {colour} object in the video is which shape?",
        "What kind of shape is the {colour} one?",
        "Identify the shape of the {colour} object.",
    ],
    "count_shapes": [
        "How many shapes appear in the video?",
        "How many different shapes are shown over the whole video?",
        "Count the shapes that appear in the clip. How many are there?",
        "What is the number of shapes that show up in the video?",
        "In total, how many coloured shapes can be seen?",
    ],
    "count_words": [
        "How many words are shown in the video?",
        "How many different words appear on screen?",
        "Count the words written on screen during the video.",
        "What is the number of words that appear in the clip?",
        "In total, how many words are displayed?",
    ],
    "first_item": [
        "Which of these appears first in the video?",
        "Which of the following shows up earliest?",
        "Among these, which one appears before the others?",
        "What comes first in the video?",
        "Which of these is the first to appear on screen?",
    ],
    "last_item": [
        "Which of these appears last in the video?",
        "Which of the following shows up latest?",
        "Among these, which one appears after the others?",
        "What comes last in the video?",
        "Which of these is the last to appear on screen?",
    ],
    "when_word": [
        "When is the word {word} on screen?",
        "During which time range is the word {word} shown?",
        "At what time does the word {word} appear, and until when?",
        "In which interval of the video can the word {word} be read?",
        "Find the time span in which {word} is written on screen.",
    ],
    "when_still": [
        "When is {name} standing still?",
        "During which time range does {name} stay in place?",
        "In which interval of the video is {name} not moving?",
        "At what time does {name} stop, and until when does it stay?",
        "Find the time span in which {name} rests.",
    ],
    "word_seconds": [
        "For how many seconds is the word {word} shown?",
        "How long does the word {word} stay on screen?",
        "How many seconds can the word {word} be seen?",
        "What is the duration for which {word} is displayed?",
        "The word {word} is visible for how long?",
    ],
    "still_seconds": [
        "For how many seconds does {name} stay still?",
        "How long does {name} rest before moving on?",
        "How many seconds does {name} stand in one place?",
        "What is the duration of the stop of {name}?",
        "{name_cap} pauses for how long?",
    ],
    "speed_of_shape": [
        "How fast does {name} move?",
        "At what speed does {name} travel?",
        "How would you describe the speed of {name}?",
        "Does {name} move slowly or quickly?",
        "Describe how {name} moves across the frame.",
    ],
    "fastest": [
        "Which shape moves fastest?",
        "Which of these moves the quickest?",
        "Of the following, which shape travels at the highest speed?",
        "Which one crosses the frame fastest?",
        "Which shape is the fastest mover in the video?",
    ],
    "which_word": [
        "Which word appears on screen?",
        "Which of these words is shown in the video?",
        "What word can be read in the video?",
        "Which of the following words is written on screen at some point?",
        "One of these words appears in the clip. Which one?",
        "What text is displayed in the video?",
    ],
    "needle_word": [
        "Which word is shown in yellow letters?",
        "One word appears in yellow instead of white. Which word is it?",
        "What word is written in yellow at some point in the video?",
        "Which word stands out in yellow?",
        "At one moment a word is written in yellow. What is that word?",
    ],
    "last_word": [
        "What is the last word shown in the video?",
        "Which word appears last?",
        "Which word is displayed at the latest point of the video?",
        "What is the final word written on screen?",
        "Of all words shown, which one comes last?",
    ],
    "last_shape_colour": [
        "What colour is the last shape to appear?",
        "Which colour does the shape that enters last have?",
        "The final shape to show up in the video is which colour?",
        "What is the colour of the latest shape to appear?",
        "Name the colour of the shape that appears after all others.",
    ],
    "caption": [
        "Describe the video with timestamps.",
        "Describe what happens in the video, with the time of each event.",
        "Give a timestamped description of this video.",
        "What happens in this video? List the events with their times.",
        "Write a dense caption of the video, one event per line with its time range.",
    ],
}

LEAD_INS: list[str] = [
    "",
    "Watch the video. ",
    "Based on the video, ",
    "Looking at the clip: ",
    "According to what is shown, ",
    "Pay attention to the whole video. ",
    "From the video, ",
    "Consider the video carefully. ",
]


def phrase(subtype: str, slots: dict[str, str], mode: str, rng: random.Random) -> tuple[str, str]:
    """The question text and its template id (``subtype/core/lead``) for ``mode``."""
    cores = CORE[subtype]
    if mode == "templates":
        core, lead = 0, 0
    else:
        core, lead = rng.randrange(len(cores)), rng.randrange(len(LEAD_INS))
    slots = dict(slots)
    if "name" in slots:
        slots["name_cap"] = slots["name"][:1].upper() + slots["name"][1:]
    text = cores[core].format(**slots)
    prefix = LEAD_INS[lead]
    if prefix.endswith(", "):  # "Based on the video, what colour ..."
        text = text[:1].lower() + text[1:]
    return prefix + text, f"{subtype}/{core}/{lead}"
