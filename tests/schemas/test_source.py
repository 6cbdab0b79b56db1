"""A source string parsed once into a typed value: a local file, an http(s) URL, or neither."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.errors import SourceError
from schemas.source import LocalSource, UnsupportedSource, UrlSource, parse_source


def test_a_plain_path_is_a_local_source_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "day.csv").write_text("x\n")
    monkeypatch.chdir(tmp_path)
    source = parse_source("data/../data/day.csv")
    assert source == LocalSource(text="data/../data/day.csv", path=tmp_path / "data" / "day.csv")
    assert source.existing_file() == tmp_path / "data" / "day.csv"


def test_a_file_url_is_a_local_source(tmp_path: Path):
    (tmp_path / "link.csv").symlink_to(tmp_path / "day.csv")
    source = parse_source(f"file://{tmp_path}/link.csv")
    assert isinstance(source, LocalSource) and source.path == tmp_path / "day.csv"
    with pytest.raises(SourceError, match=f"source {tmp_path / 'day.csv'}: no such file"):
        source.existing_file()


def test_an_http_url_keeps_its_host_port_and_path():
    source = parse_source("https://Archive.ICS.uci.edu:8443/static/bike.zip?x=1")
    assert source == UrlSource(
        text="https://Archive.ICS.uci.edu:8443/static/bike.zip?x=1",
        scheme="https",
        host="archive.ics.uci.edu",
        port=8443,
        path="/static/bike.zip",
    )
    assert source.suffix == ".zip"
    plain = parse_source("http://[::1]/day")
    assert isinstance(plain, UrlSource)
    assert (plain.host, plain.port, plain.suffix) == ("::1", None, ".bin")


def test_a_port_that_is_not_a_port_is_kept_for_the_check_to_report():
    source = parse_source("http://example.org:99999/day.csv")
    assert isinstance(source, UrlSource) and source.port is None
    assert source.port_error is not None and "out of range" in source.port_error


@pytest.mark.parametrize("text", ["ftp://example.invalid/day.csv", "s3://bucket/day.csv"])
def test_another_scheme_is_refused_when_read(text: str):
    source = parse_source(text)
    assert source == UnsupportedSource(text=text, scheme=text.split(":")[0])
    with pytest.raises(SourceError, match="only http\\(s\\) URLs and local files are supported"):
        raise source.refusal()


def test_a_windows_drive_is_a_path_not_a_scheme():
    assert isinstance(parse_source("C:/data/day.csv"), LocalSource)
