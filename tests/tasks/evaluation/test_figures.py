import base64
import io
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from tasks.evaluation.evaluate import plot_predictions
from tasks.evaluation.figures import (
    DATA_URI_PREFIX,
    MAX_DATA_URI_CHARS,
    markdown_image,
    png_bytes_data_uri,
    png_data_uri,
)
from tasks.evaluation.publish import prediction_plot_markdown
from tasks.storage.store import ArtifactStore


def decoded(uri: str) -> Image.Image:
    assert uri.startswith(DATA_URI_PREFIX)
    return Image.open(io.BytesIO(base64.b64decode(uri.removeprefix(DATA_URI_PREFIX))))


def test_figure_becomes_a_palette_png_data_uri_of_tens_of_kilobytes():
    figure = Figure(figsize=(8, 3))
    axes = figure.subplots()
    days = np.arange(100)
    axes.plot(days, 4000 + 1000 * np.sin(days / 7), label="actual")
    axes.plot(days, 4000 + 900 * np.cos(days / 7), label="predicted")
    axes.legend()
    uri = png_data_uri(figure, dpi=100)
    image = decoded(uri)
    assert image.format == "PNG" and image.mode == "P"  # quantised to a palette
    assert image.size == (800, 300)
    assert len(uri) < MAX_DATA_URI_CHARS


def test_the_seed_plot_keeps_its_size_and_shrinks_to_a_fraction_of_its_bytes():
    rng = np.random.default_rng(0)
    dates = np.arange("2012-09-23", "2013-01-01", dtype="datetime64[D]")
    actual = 5000 + 1500 * np.sin(np.arange(dates.size) / 9) + rng.normal(0, 800, dates.size)
    png = plot_predictions(dates, actual, actual + rng.normal(0, 700, dates.size))
    uri = png_bytes_data_uri(png)
    assert decoded(uri).size == Image.open(io.BytesIO(png)).size
    assert len(uri) < len(png) / 2


def test_an_image_too_large_is_narrowed_until_it_fits_or_refused():
    noise = np.random.default_rng(1).integers(0, 255, (400, 1200, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    uri = png_bytes_data_uri(buffer.getvalue(), max_chars=200_000)
    assert len(uri) <= 200_000
    width, height = decoded(uri).size
    assert 320 <= width < 1200 and height == round(400 * width / 1200)
    with pytest.raises(ValueError, match="too large for a markdown artifact"):
        png_bytes_data_uri(buffer.getvalue(), max_chars=1_000)


def test_run_summary_image_is_the_stored_plot(tmp_path: Path):
    store = ArtifactStore(tmp_path / "store")
    dates = np.arange("2012-01-01", "2012-01-31", dtype="datetime64[D]")
    png = plot_predictions(dates, np.linspace(1000, 3000, 30), np.linspace(1200, 2800, 30))
    markdown = prediction_plot_markdown(store.put_bytes(png, ".png"))
    alt = "Test window: predicted vs actual rentals (predictions.png)"
    assert markdown.splitlines()[-1].startswith(f"![{alt}]({DATA_URI_PREFIX}")
    uri = markdown.splitlines()[-1].removeprefix(f"![{alt}](").removesuffix(")")
    assert decoded(uri).size == (1000, 450)


def test_brackets_cannot_end_the_alt_text_early():
    assert markdown_image("a [b] c", "data:x") == "![a b c](data:x)"
