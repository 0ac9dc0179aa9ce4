"""The emotion palette (one set of colours for every picture, the page's included), the timeline
PNG, and the transcript snippets written on it (fits / cut with an ellipsis / left out)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, speech_recording
from emovox.records import Scores, SegmentRecord
from emovox.report.palette import (EMOTION_COLOURS, FALLBACK_COLOURS, emotion_colour, page_palette_js,
                                   text_colour)
from emovox.report.timeline import ELLIPSIS, fit_snippet, plot_timeline

PAGE = REPO / "src" / "emovox" / "assets" / "page.html"


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])


# ----------------------------------------------------------------------------- palette


@pytest.fixture(scope="module")
def model():
    import emovox

    return emovox.load(transcriber=None)


def test_palette_covers_the_bundled_model(model):
    labels = model.scorer.heads.labels
    assert len(labels) >= 7
    colours = [emotion_colour(label) for label in labels]
    assert all(label in EMOTION_COLOURS and c not in FALLBACK_COLOURS for label, c in zip(labels, colours)), colours
    assert len(set(colours)) == len(colours)  # no two of the model's emotions look alike
    r, g, b = _rgb(emotion_colour("angry"))
    assert r > 180 and g < 90 and b < 90  # red
    r, g, b = _rgb(emotion_colour("sad"))
    assert b > 150 and b > r + 60 and b > g + 40  # blue
    r, g, b = _rgb(emotion_colour("happy"))
    assert r > 200 and g > 120 and b < 60  # yellow to orange
    r, g, b = _rgb(emotion_colour("neutral"))
    assert max(r, g, b) - min(r, g, b) < 10 and 100 < r < 200  # grey


def test_palette_spellings_and_unknown_labels():
    assert emotion_colour("Anger") == emotion_colour("angry") == emotion_colour(" ANGRY ")
    assert emotion_colour("joy") == emotion_colour("happiness") == emotion_colour("happy")
    assert emotion_colour("sadness") == emotion_colour("sad") and emotion_colour("fear") == emotion_colour("fearful")
    unknown = emotion_colour("schadenfreude")
    assert unknown in FALLBACK_COLOURS and unknown == emotion_colour("Schadenfreude")  # stable, by name
    assert emotion_colour("") == emotion_colour(None) == EMOTION_COLOURS["other"]
    assert text_colour(emotion_colour("happy")) == "#000000" and text_colour(emotion_colour("sad")) == "#ffffff"


def test_the_page_uses_the_one_palette():
    html = PAGE.read_text(encoding="utf-8")
    block = re.search(r"// palette: [^\n]*\n(.*?)// end of palette", html, re.S)
    assert block, "page.html lost its palette markers"
    assert block.group(1) == page_palette_js()  # the page declares exactly the Python palette
    script = html.split("<script>")[1]
    assert "COLORS = [" not in script and "#2f6fde" not in script  # no colours of its own for emotions


@pytest.mark.skipif(shutil.which("node") is None, reason="runs the page's colour and snippet code in node")
def test_the_page_script_agrees_with_python(tmp_path):
    """The page's emotionColour, textColour and fitSnippet give what the Python functions give."""
    script = PAGE.read_text(encoding="utf-8").split("<script>")[1].split("</script>")[0]
    defs = script[:script.index("function drawTimeline")]
    labels = ["neutral", "Anger", "joy", "sad", "zzz", "schadenfreude", "", "surprise", "other"]
    texts = [("hello world foo bar", 10), ("hello world", 20), ("abcdef", 3), ("supercalifragilistic", 8)]
    harness = defs.replace('"use strict";', "") + f"""
const ctx = {{ measureText: (s) => ({{ width: [...s].length }}) }};
console.log(JSON.stringify({{
  colours: {json.dumps(labels)}.map(emotionColour),
  text: {json.dumps(sorted(EMOTION_COLOURS.values()))}.map(textColour),
  snippets: {json.dumps(texts)}.map(([t, w]) => fitSnippet(ctx, t, w)),
}}));
"""
    (tmp_path / "check.js").write_text("const document = { getElementById: () => ({}) };\n" + harness)
    res = subprocess.run(["node", str(tmp_path / "check.js")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["colours"] == [emotion_colour(label) for label in labels]
    assert got["text"] == [text_colour(c) for c in sorted(EMOTION_COLOURS.values())]
    assert got["snippets"] == [fit_snippet(t, w, len) for t, w in texts]


# ----------------------------------------------------------------------------- snippets


def test_snippet_fits_whole():
    assert fit_snippet("I love it.", 10, len) == "I love it."
    assert fit_snippet("  I   love\nit. ", 10, len) == "I love it."  # whitespace collapsed
    assert fit_snippet("I love this so much", 11, len, lines=2) == "I love this\nso much"  # words fill the lines
    assert fit_snippet("I love it.", 4, len, lines=3) == "I\nlove\nit."


def test_snippet_truncated_with_an_ellipsis():
    one = fit_snippet("I am absolutely delighted with the results", 20, len)
    assert one == f"I am absolutely{ELLIPSIS}" and len(one) <= 20  # cut after a whole word
    two = fit_snippet("I am absolutely delighted with the results", 20, len, lines=2)
    assert two == f"I am absolutely\ndelighted with the{ELLIPSIS}"
    assert all(len(line) <= 20 for line in two.split("\n"))
    # one long word: cut inside it rather than lose it
    assert fit_snippet("Supercalifragilistic", 8, len) == f"Superca{ELLIPSIS}"
    # punctuation before the cut is dropped: "Hello," + ellipsis reads badly
    assert fit_snippet("Hello, everyone out there", 8, len) == f"Hello{ELLIPSIS}"


def test_snippet_omitted_where_too_narrow():
    assert fit_snippet("Wow, that is great", 3, len) is None  # not even three characters and the ellipsis
    assert fit_snippet("Wow, that is great", 0, len) is None
    assert fit_snippet("", 100, len) is None and fit_snippet(None, 100, len) is None
    assert fit_snippet("   ", 100, len) is None
    assert fit_snippet("ok", 2, len) == "ok"  # a short text that fits is never dropped
    # a first word fits but the rest has no room for even its ellipsis: nothing, not a cut-off "I"
    assert fit_snippet("I am furious about this", 2, len, lines=2) is None
    assert fit_snippet("I am furious about this", 5, len, lines=2) == f"I am\nfuri{ELLIPSIS}"


# ----------------------------------------------------------------------------- the picture


def _band(img: np.ndarray, wide: str) -> tuple[int, int]:
    """Rows (top, bottom) of the emotion band: those where the ``wide`` span's colour runs long
    (the legend's patches of the same colour are short)."""
    rows = np.nonzero((img == _rgb(wide)).all(axis=2).sum(axis=1) > 60)[0]
    assert len(rows), f"no band of {wide}"
    return rows.min(), rows.max()


def _columns(img: np.ndarray, rows: tuple[int, int], colour: str) -> tuple[int, int]:
    cols = np.nonzero((img[rows[0]:rows[1] + 1] == _rgb(colour)).all(axis=2).any(axis=0))[0]
    assert len(cols), f"no {colour} in the band"
    return cols.min(), cols.max()


def test_timeline_of_the_bundled_model(model, speech_clips, tmp_path):
    """The real model on generated speech: a PNG with each segment's palette colour, and the
    transcripts written where they fit."""
    from PIL import Image

    audio, _ = speech_recording(speech_clips, pause=1.0, lead=0.5)
    sf.write(tmp_path / "three.wav", audio, 16000)
    records = model.predict(tmp_path / "three.wav")
    assert len(records) == 3
    sentences = ["The quick brown fox jumps over the lazy dog.", "I really love this wonderful sunny morning.",
                 "Please close the door when you leave the room."]
    records = [replace(r, transcript=t) for r, t in zip(records, sentences)]
    png = plot_timeline(records, tmp_path / "t.png", title="three.wav")
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    for r in records:
        assert (img == _rgb(emotion_colour(r.emotion.label))).all(axis=2).sum() > 1000, r.emotion.label


def test_snippets_drawn_only_where_they_fit(tmp_path):
    from PIL import Image

    probs = {"angry": 0.7, "sad": 0.2, "neutral": 0.1}
    records = [SegmentRecord("f.wav", 0.0, 12.0, "I am furious about this", None, -0.5, 0.8, 0.3,
                             Scores("angry", probs)),
               SegmentRecord("f.wav", 12.5, 12.9, "I am furious about this", None, 0.0, 0.0, 0.0,
                             Scores("neutral", probs)),  # 0.4 s: too narrow for any text
               SegmentRecord("f.wav", 14.0, 30.0, "", None, -0.6, -0.5, 0.1, Scores("sad", probs))]
    png = plot_timeline(records, tmp_path / "t.png")
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    top, bottom = _band(img, emotion_colour("angry"))
    band = img[top + 2:bottom - 1]

    def written(colour: str) -> int:
        """Pixels inside the span of this colour that are far from it: its text."""
        left, right = _columns(img, (top, bottom), colour)
        span = band[:, left + 2:right - 1]
        assert span.size
        return int((np.abs(span - _rgb(colour)).sum(axis=2) > 120).sum())

    assert written(emotion_colour("angry")) > 100  # white words on red
    assert written(emotion_colour("neutral")) == 0  # nothing on the narrow grey span
    assert written(emotion_colour("sad")) == 0  # no text, nothing written
