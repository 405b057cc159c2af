"""Layout never clips, fonts fall back, CJK wraps, missing glyphs are reported — checked from the layout
and from the rendered pixels."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from textfonts import make_cjk_font

from sparrow.render import (
    FontSpec,
    RenderConfig,
    Renderer,
    RenderError,
    coverage,
    default_fonts,
    font_chain,
    fonts,
    png_bytes,
)

VARIED = """Quarterly report — Section 4.2 (draft v0.9)

Totals: 1,234,567 units shipped; 98.6% on time; revenue $12,345,678.90 (+4.5% QoQ).
Sources: https://data.example.org/reports/2024/q3/shipments?region=north-west&format=csv&page=12
and ftp://archive.example.net/pub/very/long/path/name/that/keeps/going/forever.tar.gz

Checklist:
1. Verify the pneumonoultramicroscopicsilicovolcanoconiosis_identifier_with_no_spaces_at_all field.
2. Don't forget: e-mail jane.doe+reports@example.com by 17:30 UTC.
  - nested item with tab\there and [brackets], {braces}, "quotes" and 'apostrophes'
  - Ünïcödé àccents, Æsir, Øresund, Straße, naïve café, jogged fjords

Final paragraph: The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs!"""


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(RenderConfig())


@pytest.fixture(scope="module")
def cjk_font(tmp_path_factory) -> Path:
    return make_cjk_font(tmp_path_factory.mktemp("fonts") / "testcjk.ttf")


def _inside(box, cfg: RenderConfig) -> bool:
    m = cfg.margin
    return box[0] >= m and box[1] >= m and box[2] <= cfg.width - m and box[3] <= cfg.height - m


def _check_pixels(renderer: Renderer, lay) -> np.ndarray:
    """Ink exactly where the layout says: margins blank, every word box non-empty, ink box equal."""
    cfg = renderer.config
    arr = np.asarray(renderer.render(lay).convert("L"))
    ink = arr < 250
    m = cfg.margin
    assert not ink[:m].any() and not ink[-m:].any() and not ink[:, :m].any() and not ink[:, -m:].any()
    ys, xs = np.nonzero(ink)
    box = lay.box
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == box
    for w in lay.words:
        if w.box is not None:
            x0, y0, x1, y1 = w.box
            assert ink[y0:y1, x0:x1].any(), f"word {w.text!r} has no ink"
    return arr


def test_varied_text_every_word_inside_and_in_order():
    renderer = Renderer(RenderConfig(height=900))  # the default width; tall enough for all of it
    lay = renderer.layout(VARIED)
    assert lay.fits
    cfg = renderer.config
    for w in lay.words:
        assert w.box is not None and _inside(w.box, cfg), w
    # nothing lost or reordered: the drawn words are the text's non-space characters, in order
    assert "".join(w.text for w in lay.words) == "".join(VARIED.split())
    # the words' offsets point at their characters in the input
    for w in lay.words:
        assert VARIED[w.start : w.end] == w.text
    # the long URL and the long identifier were broken over lines, each piece within the width
    assert any(w.text.startswith("https://data.example.org") and w.end - w.start < 90 for w in lay.words)
    # a paragraph break leaves an empty line; a single newline starts a new line
    texts = [ln.text for ln in lay.lines]
    assert texts[0].startswith("Quarterly report") and texts[1] == "v0.9)" and texts[2] == ""
    assert any(t.startswith("Totals:") for t in texts) and any(t.startswith("Checklist:") for t in texts)
    # lines are evenly spaced
    gaps = {b.baseline - a.baseline for a, b in zip(lay.lines, lay.lines[1:], strict=False)}
    assert gaps == {renderer.line_height}
    _check_pixels(renderer, lay)


def test_text_that_does_not_fit_is_reported_not_clipped(renderer):
    long_text = " ".join(["overflowing words everywhere"] * 200)
    lay = renderer.layout(long_text)
    assert not lay.fits
    assert len(lay.lines) > renderer.max_lines
    cut = lay.fitting_prefix()
    assert cut is not None and 0 < cut < len(long_text)
    head = renderer.layout(long_text[:cut].rstrip())
    assert head.fits and len(head.lines) == renderer.max_lines
    with pytest.raises(RenderError, match="lines"):
        renderer.render_text(long_text)


def test_prefix_layout_equals_fresh_layout(renderer):
    lay = renderer.layout(VARIED)
    assert not lay.fits  # prefixes of a text that overflows the frame
    for w in lay.words[5::7]:
        pre = lay.prefix(w.end)
        fresh = renderer.layout(VARIED[: w.end])
        assert pre is not None
        assert [(x.text, x.box) for x in pre.words] == [(x.text, x.box) for x in fresh.words]
        assert pre.fits == fresh.fits


def test_font_size_and_frame_size_respected():
    cfg = RenderConfig(width=320, height=200, font_size=14, margin=10)
    r = Renderer(cfg)
    lay = r.layout(VARIED[:200])
    assert lay.fits
    arr = _check_pixels(r, lay)
    assert arr.shape == (200, 320)
    assert r.line_height < Renderer(RenderConfig()).line_height


def test_cjk_wraps_per_character_and_renders(cjk_font):
    r = Renderer(RenderConfig(fonts=(str(cjk_font),)))
    from textfonts import CJK_CHARS

    han = CJK_CHARS[:40]
    text = (han + "。") * 3 + "「中文」和 English words mixed in."
    assert r.describe_missing(text) is None
    lay = r.layout(text)
    assert lay.fits and len(lay.lines) >= 3
    # wrapped without spaces: lines end mid-sentence, at character boundaries
    assert all(len(w.text) <= 4 for w in lay.words if not w.text.isascii())
    # no line starts with closing punctuation
    assert all(ln.words[0].text[0] not in "。，」）" for ln in lay.lines if ln.words)
    # every character drawn: CJK words concatenate back to the text
    assert "".join(w.text for w in lay.words) == "".join(text.split())
    # Latin falls back to DejaVu, CJK comes from the test font
    assert r.font_for("中") == 0 and r.chain[r.font_for("E")].path.endswith("DejaVuSans.ttf")
    arr = _check_pixels(r, lay)
    # full-width glyphs: the first line is nearly as wide as the frame
    first = lay.lines[0].box
    assert first[2] - first[0] > r.config.width - 2 * r.config.margin - 25
    # different characters draw different pixels (the font is not drawing one box for all)
    w0, w1 = lay.lines[0].words[0].box, lay.lines[0].words[1].box
    a = arr[w0[1] : w0[3], w0[0] : w0[2]]
    b = arr[w1[1] : w1[3], w1[0] : w1[2]]
    assert a.shape != b.shape or not np.array_equal(a, b)


@pytest.mark.skipif(not any(Path(p).is_file() for p in fonts.CJK_PATHS), reason="no system CJK font")
def test_cjk_with_installed_noto():
    r = Renderer(RenderConfig())
    text = "中国人喝茶的历史已经有几千年了。" * 6
    assert r.describe_missing(text) is None
    lay = r.layout(text)
    assert lay.fits and len(lay.lines) >= 4
    _check_pixels(r, lay)


def test_missing_glyph_is_reported(renderer):
    text = "Linear B: \U00010000 and a private-use \ue000 character"
    missing = renderer.missing_glyphs(text)
    assert [c for _, c in missing] == ["\U00010000", "\ue000"]
    assert missing[0][0] == text.index("\U00010000")
    reason = renderer.describe_missing(text)
    assert "U+10000" in reason and "U+E000" in reason and "--font" in reason
    strict = Renderer(RenderConfig(missing_glyphs="error"))
    with pytest.raises(RenderError, match="U\\+10000"):
        strict.render_text(text)
    with pytest.raises(RenderError, match="U\\+10000"):
        strict.layout(text)
    # invisible characters are not drawn and not reported
    assert renderer.missing_glyphs("soft\u00adhyphen zero\u200bwidth e\u0301 \ufe0f") == []


def test_missing_glyphs_drawn_as_visible_placeholders(renderer):
    # an unassigned code point (twice), a private-use character inside a word, an emoji
    text = "before \u0378 middle ab\ue000cd \u0378 after \U0001f600 end"
    missing = renderer.missing_glyphs(text)
    expected = [(text.index("\u0378"), "\u0378"), (text.index("\ue000"), "\ue000")]
    if renderer.font_for("\U0001f600") is None:  # no emoji font installed: the emoji is missing too
        expected.append((text.index("\U0001f600"), "\U0001f600"))
    assert missing == expected
    lay = renderer.layout(text)  # "replace" is the default
    assert lay.fits
    assert [w.text for w in lay.words] == text.split()
    arr = _check_pixels(renderer, lay)  # every word, placeholders included, has ink inside its box
    size = renderer.config.font_size
    for w in lay.words:
        if w.text != "\u0378":
            continue
        x0, y0, x1, y1 = w.box
        box = arr[y0:y1, x0:x1]
        # an outlined box: ink all round its edge, blank inside, about one em wide, on the baseline
        assert (box[0] < 128).all() and (box[-1] < 128).all() and (box[:, 0] < 128).all()
        assert (box[:, -1] < 128).all() and (box[3:-3, 3:-3] == 255).all()
        assert size // 2 <= x1 - x0 <= size and y1 == lay.lines[0].baseline
    # a placeholder inside a word keeps the word's letters on both sides
    inner = next(w for w in lay.words if w.text == "ab\ue000cd")
    assert (
        inner.box[2] - inner.box[0]
        > renderer.layout("abcd").box[2] - renderer.layout("abcd").box[0] + size // 2
    )
    assert np.array_equal(np.asarray(renderer.render_text(text)), arr)
    # the rest of the text is drawn exactly as without the missing characters
    clean = renderer.layout("before")
    b0, c0 = lay.words[0].box, clean.words[0].box
    assert b0 == c0
    assert np.array_equal(
        arr[b0[1] : b0[3], b0[0] : b0[2]], renderer.pixels(clean)[c0[1] : c0[3], c0[0] : c0[2]]
    )


@pytest.mark.skipif(not any(Path(p).is_file() for p in fonts.EMOJI_PATHS), reason="no emoji font installed")
def test_emoji_drawn_with_installed_emoji_font():
    r = Renderer(RenderConfig())
    assert r.chain[-1].path in fonts.EMOJI_PATHS  # last: it changes no character other fonts draw
    text = "ok \U0001f600 done"
    assert r.missing_glyphs(text) == []
    lay = r.layout(text)
    arr = _check_pixels(r, lay)
    x0, y0, x1, y1 = lay.words[1].box
    face = arr[y0:y1, x0:x1]
    # scaled to the text size, and a picture (many grey levels), not the placeholder's outline
    size = r.config.font_size
    assert size * 3 // 4 <= x1 - x0 <= size * 3 // 2 and size * 3 // 4 <= y1 - y0 <= size * 3 // 2
    assert len(np.unique(face)) > 16 and face[(y1 - y0) // 2, (x1 - x0) // 2] < 255


def test_invisible_characters_keep_offsets(renderer):
    text = "a\u200bbc de\u00adf"
    lay = renderer.layout(text)
    assert [w.text for w in lay.words] == ["abc", "def"]
    assert [(w.start, w.end) for w in lay.words] == [(0, 4), (5, 9)]


def test_right_to_left_paragraph_inside_canvas(renderer):
    text = "שלום עולם, זוהי שורה בעברית. " * 6 + "\nمرحبا بالعالم هذا نص عربي للاختبار " * 3
    lay = renderer.layout(text)
    assert lay.fits and all(ln.rtl for ln in lay.lines if ln.words)
    # right-aligned: every line ends at the right margin
    cfg = renderer.config
    assert all(ln.box[2] == cfg.width - cfg.margin for ln in lay.lines if ln.words)
    _check_pixels(renderer, lay)


def test_colours_and_formats():
    r = Renderer(RenderConfig(fg="#ff0000", bg="#002000", image_format="png"))
    lay = r.layout("Red text on dark green.")
    img = Image.open(io.BytesIO(r.frame_bytes(lay)))
    assert img.mode == "P"
    rgb = np.asarray(img.convert("RGB"))
    assert tuple(rgb[0, 0]) == (0, 32, 0)
    x0, y0, x1, y1 = lay.box
    region = rgb[y0:y1, x0:x1].reshape(-1, 3)
    assert region[:, 0].max() == 255 and region[region[:, 0] == 255][:, 1].max() == 0
    for fmt in ("jpg", "webp"):
        rf = Renderer(RenderConfig(image_format=fmt, quality=80))
        im = Image.open(io.BytesIO(rf.frame_bytes(rf.layout("Lossy text frame"))))
        assert im.size == (448, 448) and im.format == {"jpg": "JPEG", "webp": "WEBP"}[fmt]


def test_png_writer_round_trip():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(37, 53), dtype=np.uint8)
    back = np.asarray(Image.open(io.BytesIO(png_bytes(arr))))
    assert np.array_equal(back, arr)
    pal = [v for i in range(256) for v in (i, 255 - i, 7)]
    img = Image.open(io.BytesIO(png_bytes(arr, pal)))
    assert img.mode == "P" and np.array_equal(np.asarray(img), arr)
    assert tuple(np.asarray(img.convert("RGB"))[0, 0]) == (arr[0, 0], 255 - arr[0, 0], 7)


def test_font_chain_fallbacks(monkeypatch, tmp_path):
    chain = default_fonts()
    assert chain and chain[0].path.endswith("DejaVuSans.ttf")
    # without system fonts the DejaVu bundled with matplotlib is used
    monkeypatch.setattr(fonts, "DEJAVU_PATHS", ())
    bundled = default_fonts()[0]
    assert "mpl-data" in bundled.path and Path(bundled.path).is_file()
    with pytest.raises(RenderError, match="not found"):
        font_chain([str(tmp_path / "nope.ttf")])
    bad = tmp_path / "bad.ttf"
    bad.write_bytes(b"not a font")
    with pytest.raises(RenderError, match="cannot read font"):
        coverage(FontSpec(str(bad)))
    assert FontSpec.parse("x.ttc#2") == FontSpec("x.ttc", 2)


def test_config_validation():
    with pytest.raises(RenderError, match="no room"):
        Renderer(RenderConfig(width=60, height=60, margin=20))
    with pytest.raises(RenderError, match="format"):
        Renderer(RenderConfig(image_format="gif"))
    with pytest.raises(RenderError, match="colour"):
        Renderer(RenderConfig(fg="not-a-colour"))
    with pytest.raises(RenderError, match="missing glyphs must be one of"):
        Renderer(RenderConfig(missing_glyphs="drop"))
