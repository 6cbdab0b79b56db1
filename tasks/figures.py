"""Figures for the Prefect UI: a matplotlib figure as a small PNG data URI inside markdown.

The Prefect UI shows markdown artifacts but has no image artifact, and the worker's output
folder is not reachable from a browser. A PNG carried in the markdown as a ``data:`` URI is
the one way a plot appears on the run page itself (tests/deployments/test_ui_images.py checks
that the UI loads it). Artifacts are stored in the server's database, so the image is kept to
tens of kilobytes: a small figure at a low dpi, quantised to a palette PNG.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# What a run's markdown artifact may carry per image (the base64 text, not the PNG bytes).
MAX_DATA_URI_CHARS = 80_000
# Line plots use a handful of colours plus their anti-aliasing shades: 64 keep them smooth.
PALETTE_COLOURS = 64
DATA_URI_PREFIX = "data:image/png;base64,"


def png_bytes(figure: Figure, dpi: int = 72, colours: int = PALETTE_COLOURS) -> bytes:
    """The figure as a palette PNG (quantised with Pillow), without metadata."""
    from PIL import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    buffer.seek(0)
    with Image.open(buffer) as image:
        palette = image.convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue()


def png_data_uri(figure: Figure, dpi: int = 72, max_chars: int = MAX_DATA_URI_CHARS) -> str:
    """The figure as ``data:image/png;base64,...``; ValueError when it exceeds ``max_chars``."""
    uri = DATA_URI_PREFIX + base64.b64encode(png_bytes(figure, dpi)).decode("ascii")
    check_data_uri_size(uri, max_chars)
    return uri


def check_data_uri_size(uri: str, max_chars: int = MAX_DATA_URI_CHARS) -> None:
    """Refuse a data URI too large for a markdown artifact (a bug in the figure's size)."""
    if len(uri) > max_chars:
        raise ValueError(
            f"a {len(uri):,}-character image is too large for a markdown artifact "
            f"(at most {max_chars:,}); draw the figure smaller or at a lower dpi"
        )


def markdown_image(alt: str, uri: str) -> str:
    """A markdown image line; brackets in ``alt`` would end the alt text, so they are dropped."""
    text = alt.replace("[", "").replace("]", "")
    return f"![{text}]({uri})"
