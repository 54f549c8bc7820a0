"""The configuration: golden bad files with exact messages, the example, and the schema."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agent.service.config import Config, json_schema, load_config, semantic_problems
from agent.service.defaults import EX_CONFIG
from drivers.yamlfile import load_model
from tests.support import CASES, REPO, hpagent

BAD = sorted((CASES / "config").glob("*.yaml"))


def check(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return hpagent("config", "check", path.name, cwd=cwd)


@pytest.mark.parametrize("case", BAD, ids=lambda p: p.stem)
def test_bad_config_names_file_line_and_key(case: Path) -> None:
    """``<case>.expected`` lists the exact lines; a line ending in '...' is matched as a prefix."""
    result = check(case, case.parent)
    assert result.returncode == EX_CONFIG
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "hpagent: configuration has problems:"
    expected = case.with_suffix(".expected").read_text().splitlines()
    assert len(lines) - 1 == len(expected), result.stderr
    for got, want in zip(lines[1:], expected, strict=True):
        if want.endswith("..."):
            assert got.startswith(want.removesuffix("...")), got
        else:
            assert got == want


def test_good_config_passes(tmp_path: Path) -> None:
    good = tmp_path / "hpagent.yaml"
    good.write_text("device_id: gw-1\ndevices:\n  - kind: modbus\n    name: heatpump\n"
                    "    profile: hpagent_bench_heatpump\n    tcp: {host: 127.0.0.1}\n"
                    "    interval: 5m\n")
    result = check(good, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ok (1 devices, 0 recipients, 0 grants)" in result.stdout
    config = load_config(good)
    assert config.devices[0].interval == 300.0
    assert config.signing_key == Path("/var/lib/hpagent/gateway.key")


def test_the_example_config_is_valid_but_for_files_of_the_gateway() -> None:
    example = REPO / "config" / "hpagent.example.yaml"
    config = load_model(example, Config)
    problems = list(semantic_problems(config))
    assert problems, "the example names the TLS and password files a gateway has"
    assert all(message.endswith("does not exist or is not readable")
               for _, message in problems)


def test_committed_schema_is_current() -> None:
    committed = json.loads((REPO / "config" / "hpagent.schema.json").read_text())
    assert committed == json_schema(), \
        "regenerate it: hpagent config schema > config/hpagent.schema.json"


def test_p1_spec_choices_are_the_drivers() -> None:
    from typing import get_args

    from agent.service.config import P1Spec
    from drivers.p1_telegram import SPEC_CHOICES

    assert get_args(P1Spec) == SPEC_CHOICES
