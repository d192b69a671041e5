"""The one run-config schema, and everything held to it."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import pytest

from fedotl.client.config import APP_KEYS, DEFAULTS, KEYS, RunConfig, parse_value

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_table_is_the_app_keys_with_their_defaults():
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    assert list(table) == list(APP_KEYS)
    for name, value in table.items():
        assert value == DEFAULTS[name] and type(value) is type(DEFAULTS[name]), name


def test_every_key_is_declared_once_with_help():
    names = [k.name for k in KEYS]
    assert len(names) == len(set(names))
    assert all(k.help and k.scope in ("app", "harness") for k in KEYS)


def test_simulate_flags_come_from_the_schema():
    from fedotl.simulations.cli import build_parser
    from fedotl.simulations.cli.simulate import FLAGS

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    actions = {a.dest: a for a in sub.choices["simulate"]._actions}
    for flag, name in FLAGS.items():
        k = next(k for k in KEYS if k.name == name)
        assert flag in actions[name].option_strings and str(k.default) in actions[name].help and k.help in actions[name].help
        assert list(actions[name].choices or ()) == list(k.choices)


def test_values_are_typed_and_checked():
    cfg = RunConfig({"num-server-rounds": 3.0, "learning-rate": 1})
    assert cfg.num_server_rounds == 3 and type(cfg.num_server_rounds) is int and cfg.learning_rate == 1.0
    assert cfg["learning-rate"] == cfg.learning_rate and len(cfg) == len(KEYS)
    for bad, match in (
        ({"num-server-rounds": 2.5}, "must be an integer"),
        ({"num-server-rounds": 0}, ">= 1"),
        ({"augment": "yes"}, "true or false"),
        ({"model": "rnn"}, "model must be one of cnn, mlp"),
        ({"train-fraction": 1.0}, r"train-fraction must be in \(0, 1\)"),
        ({"learning-rate": float("nan")}, "finite"),
        ({"no-such-key": 1}, "unknown run-config key"),
        ({"strategy": "fedbn", "secagg": True}, "does not apply to fedbn"),
        ({"strategy": "fedap", "dp": "client-fixed"}, "does not apply to fedap"),
        ({"secagg": True, "dp": "server-fixed", "strategy": "fedavg"}, "use dp=client-fixed"),
    ):
        with pytest.raises(ValueError, match=match):
            RunConfig(bad)


def test_parse_value_reads_text_as_the_keys_type():
    assert parse_value("secagg", "true") is True and parse_value("seed", "7") == 7 and parse_value("coral-weight", "0.5") == 0.5
    assert parse_value("strategy", "fedap") == "fedap"
    with pytest.raises(ValueError, match="cannot read 'many' as int"):
        parse_value("num-server-rounds", "many")
    with pytest.raises(ValueError, match="unknown run-config key"):
        parse_value("rounds", "3")
