"""A true/false flag takes true/false/yes/no/1/0 (any case) and nothing else: a typo is exit 2."""

from __future__ import annotations

import argparse

import pytest

from flows.cli.common import parse_bool
from flows.cli.main import main

NEEDS_PREFECT = False


@pytest.mark.parametrize(
    ("text", "value"),
    [
        *(("true", True), ("TRUE", True), ("Yes", True), ("1", True)),
        *(("false", False), ("False", False), ("NO", False), ("0", False)),
    ],
)
def test_a_true_false_flag_reads_its_six_words_in_any_case(text: str, value: bool):
    assert parse_bool(text) is value


@pytest.mark.parametrize("text", ["ture", "", "on", "off", "2", "y", "truee"])
def test_anything_else_is_refused(text: str):
    with pytest.raises(argparse.ArgumentTypeError, match="true/false/yes/no/1/0"):
        parse_bool(text)


def test_a_typo_in_a_flag_is_a_usage_error_naming_the_flag_and_the_value(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["run", "--refit", "ture"])

    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "argument --refit" in error and "'ture'" in error


def test_a_valid_word_sets_the_flag(tmp_path):
    from flows.cli.main import make_parser

    args = make_parser().parse_args(["run", "--refit", "No"])
    assert args.refit is False
    args = make_parser().parse_args(["run", "--refit", "YES"])
    assert args.refit is True
