"""Figures for the Prefect UI: a plot as a small PNG data URI inside a markdown artifact.

The Prefect UI shows markdown artifacts but has no image artifact, and the worker's output
folder is not reachable from a browser. A PNG carried in the markdown as a ``data:`` URI is
the one way a plot appears on the run page itself: both of Prefect 3.9's UIs render it (the
default Vue UI and the React one under /v2; tests/deployments/test_ui_images.py loads it in
chromium). Artifacts are stored in the server's database, so an image is kept to tens of
kilobytes: quantised to a palette PNG, and made narrower only if it is still too large.

Only Pillow is imported for a PNG that already exists (matplotlib's import costs a second or
more, which a run that only publishes should not pay).
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# What one image may take in a markdown artifact (the base64 text, not the PNG bytes).
MAX_DATA_URI_CHARS = 80_000
# Line plots have a few colours plus their anti-aliasing shades: 32 keep the lines smooth.
PALETTE_COLOURS = 32
# Narrowest width tried before giving up (a 320-pixel-wide line plot fits with room to spare).
MIN_WIDTH = 320
DATA_URI_PREFIX = "data:image/png;base64,"


def compact_png(png: bytes, colours: int = PALETTE_COLOURS, width: int | None = None) -> bytes:
    """Re-encode a PNG as an optimised palette PNG, optionally scaled down to ``width`` pixels."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        rgb = image.convert("RGB")
    if width is not None and width < rgb.width:
        height = max(1, round(rgb.height * width / rgb.width))
        rgb = rgb.resize((width, height), Image.Resampling.LANCZOS)
    palette = rgb.quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _uri(png: bytes) -> str:
    return DATA_URI_PREFIX + base64.b64encode(png).decode("ascii")


def png_bytes_data_uri(png: bytes, max_chars: int = MAX_DATA_URI_CHARS) -> str:
    """A PNG as a ``data:`` URI of at most ``max_chars``: palette first, then narrower."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        width = image.width
    uri = _uri(compact_png(png))
    while len(uri) > max_chars and width > MIN_WIDTH:
        width = max(MIN_WIDTH, int(width * 0.75))
        uri = _uri(compact_png(png, width=width))
    check_data_uri_size(uri, max_chars)
    return uri


def new_figure(size: tuple[float, float], dpi: int) -> tuple[Figure, Axes]:
    """A figure with one axes on matplotlib's file-only backend (no display on a worker)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size, dpi=dpi)


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes, then closed; no software tag, so equal plots are equal bytes."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def png_data_uri(figure: Figure, dpi: int = 100, max_chars: int = MAX_DATA_URI_CHARS) -> str:
    """A matplotlib figure as ``data:image/png;base64,...`` of at most ``max_chars``."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return png_bytes_data_uri(buffer.getvalue(), max_chars)


def check_data_uri_size(uri: str, max_chars: int = MAX_DATA_URI_CHARS) -> None:
    """Refuse a data URI too large for a markdown artifact."""
    if len(uri) > max_chars:
        raise ValueError(
            f"a {len(uri):,}-character image is too large for a markdown artifact "
            f"(at most {max_chars:,}); draw the figure smaller or at a lower dpi"
        )


def markdown_image(alt: str, uri: str) -> str:
    """A markdown image; brackets would end the alt text early, so they are dropped from it."""
    text = alt.replace("[", "").replace("]", "")
    return f"![{text}]({uri})"
