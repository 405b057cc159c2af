"""The world's vocabulary: colours, shapes, words, speeds. Shared by the video scenes, the transcripts
and the text corpus so that text skills transfer to the video questions."""

from __future__ import annotations

# Saturated colours far apart in RGB (and in YUV after H.264's 4:2:0 chroma subsampling), so that the
# colour at a shape's centre survives encoding and a test can name it back by nearest neighbour.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35),
    "orange": (245, 145, 25),
    "yellow": (240, 225, 40),
    "green": (45, 190, 65),
    "cyan": (40, 215, 225),
    "blue": (45, 80, 235),
    "magenta": (225, 55, 205),
    "white": (240, 240, 240),
}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross")

# Short capitalised words, no two alike in length and first letter too often, so that OCR at low
# resolution is possible but not trivial.
WORDS: tuple[str, ...] = (
    "SUN", "MOON", "STAR", "TREE", "FISH", "BIRD", "RAIN", "SNOW", "WIND", "FIRE",
    "ROCK", "LEAF", "BOAT", "CAKE", "DOOR", "LAMP", "BELL", "KING", "SHIP", "GOLD",
    "MILK", "FROG", "DUCK", "WOLF", "BEAR", "LION", "ROSE", "CORN", "SALT", "NEST",
    "KITE", "DRUM", "HARP", "OWL", "FOX", "CAT", "DOG", "SKY", "SEA", "MAP",
    "KEY", "CUP", "HAT", "EGG", "BUS", "JAM", "PEN", "BOX",
)  # fmt: skip

# Speeds in pixels per second at a 128 px frame (scaled with the frame size).
SPEEDS: dict[str, float] = {"slowly": 16.0, "steadily": 40.0, "quickly": 100.0}

SIDES: tuple[str, ...] = ("left", "right")

WORD_COLOUR = "white"
HIGHLIGHT_COLOUR = "yellow"  # the long-range "needle" word
WORD_BOX_RGB = (0, 0, 0)


def nearest_colour(rgb: tuple[int, int, int] | list[int]) -> str:
    """The palette colour nearest to an RGB triple (used to read colours back from decoded frames)."""
    r, g, b = (int(v) for v in rgb)
    return min(COLOURS, key=lambda c: sum((a - x) ** 2 for a, x in zip(COLOURS[c], (r, g, b), strict=True)))


def article(word: str) -> str:
    """``a`` or ``an`` for the word that follows."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def shape_name(colour: str, shape: str) -> str:
    return f"the {colour} {shape}"


def mmss(seconds: float) -> str:
    """``MM:SS`` (whole seconds, floor), the format of the time-range answers and Apollo's prefixes."""
    s = max(0, int(seconds))
    return f"{s // 60:02d}:{s % 60:02d}"


def time_range(start: float, end: float) -> str:
    return f"{mmss(start)}-{mmss(end)}"


def seconds_text(n: int) -> str:
    return "1 second" if n == 1 else f"{n} seconds"
