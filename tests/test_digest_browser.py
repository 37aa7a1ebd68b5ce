"""The HTML digest as a mail reader sees it: rendered by headless Chromium at a phone's 400 px
and a desktop's 900 px, and its text, read once as HTML, holds the API's characters as they
were sent (``<`` and ``&`` shown, never ``&lt;`` or ``&amp;lt;``)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from bot.deliver.email import inline_css, render_digest
from bot.render import Renderer
from tests.test_http import screenshot
from tests.test_recap import EVIL, sample_recap


class _Text(HTMLParser):
    """The text a reader sees: tags dropped, entities decoded once (``convert_charrefs``)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self._skip += tag in ("style", "script", "head")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "script", "head")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def shown_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def test_digest_text_shows_api_characters_once() -> None:
    """A symbol holding ``<SCRIPT>&X`` and a summary with ``<b>bold</b> & more`` read exactly
    so: escaped once by the HTML template, never twice."""
    _, html = render_digest(Renderer(), sample_recap(), with_chart=False)
    text = shown_text(inline_css(html))
    assert EVIL in text
    assert "&lt;" not in text and "&amp;" not in text
    assert "<script" not in html.lower()  # the hostile symbol is not markup


@pytest.mark.e2e
async def test_digest_renders_in_chromium_at_400_and_900_px(tmp_path: Path) -> None:
    """Chromium draws the digest at phone and desktop widths: a PNG of that width with text
    on it, nothing cut at 400 px (the page is no wider than the window)."""
    _, html = render_digest(Renderer(), sample_recap(watchlist_extra=12), with_chart=False)
    page = tmp_path / "digest.html"
    page.write_text(inline_css(html), encoding="utf-8")
    shots = {w: tmp_path / f"digest-{w}.png" for w in (400, 900)}
    for width, path in shots.items():
        await screenshot(page.as_uri(), path, width, tmp_path / "profile")
    for width, path in shots.items():
        image = imread(path)
        assert image.shape[1] == width
        pixels = image.reshape(-1, image.shape[2])[:, :3]
        assert len(np.unique(pixels, axis=0)) > 50, "text is drawn"
        # Nothing is cut at the right edge: the last columns are the page's background.
        edge = image[:, -4:, :3].reshape(-1, 3)
        assert len(np.unique(edge, axis=0)) <= 3, "content runs past the window's edge"
