"""Each protocol card's audit table (docs/protocols/<name>.md) agrees with its preset, and every key the paper
fixes is recorded as a deviation when overridden.

    .venv/bin/python -m pytest -q tests/test_protocol_cards.py

The card's madbench column writes the preset's values as `key=value` (a key marked *(fixed)* is in the preset's
fixed list); the test reads them from the card, so a preset and its card cannot drift apart.
"""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import ROOT, madbench
from madbench.config.presets import PRESETS
from madbench.config.protocols import PROTOCOLS, check
from madbench.config.run_config import build_config, to_plain

PAIR = re.compile(r"`([a-z_]+(?:\.[a-z_]+)+)=([^`]*)`( \*\(fixed\)\*)?")


def card_rows(name: str) -> list:
    """The rows (lists of cells) of the card's first table, the audit table."""
    lines = (ROOT / "docs" / "protocols" / f"{name}.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| setting |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def card_values(name: str):
    """{key: value text} written in the madbench column, and the keys marked *(fixed)*."""
    values, fixed = {}, set()
    for row in card_rows(name):
        assert len(row) == 4, f"{name}: a table row needs 4 cells (setting, paper, madbench, why): {row}"
        for key, text, marked in PAIR.findall(row[2]):
            values[key] = text
            if marked:
                fixed.add(key)
    return values, fixed


def resolved(name: str, *overrides) -> dict:
    return build_config(PRESETS.get(name)(), None, list(overrides)).to_dict()


def dotted(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(dotted(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_the_cards_table_is_the_resolved_preset(name):
    values, fixed = card_values(name)
    config = dotted(resolved(name))
    for key, text in values.items():
        assert key in config, f"{name}: the card names {key}, which is not a config key"
        as_written = dotted(resolved(name, f"{key}={text}"))[key]  # the card's text read as a CLI override reads it
        assert as_written == config[key], f"{name}: card says {key}={text}, the preset resolves to {config[key]!r}"
    preset_keys = set(dotted(to_plain(PROTOCOLS[name]["values"])))
    assert preset_keys <= set(values), f"{name}: the card's table leaves out {sorted(preset_keys - set(values))}"
    assert fixed == set(PROTOCOLS[name]["fixed"]), f"{name}: fixed in the card {sorted(fixed)}, in the preset {sorted(PROTOCOLS[name]['fixed'])}"


def test_drayson_arms_are_the_sweep_file():
    rows = []
    lines = (ROOT / "docs" / "protocols" / "drayson2025.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| arm |"))
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cell = line.strip("|").split("|")[2].strip().strip("`")
        rows.append({k: yaml.safe_load(v) for k, v in (part.split("=") for part in cell.split(", "))})
    sweep = yaml.safe_load((ROOT / "sweeps" / "drayson2025.yaml").read_text())["grid"]["sampling"]
    assert rows == sweep and len(rows) == 6
    # the paper's six arms, each with its own decoding (no two arms the same)
    assert len({tuple(sorted(r.items())) for r in rows}) == 6


def other_value(key: str, value):
    """A valid value different from ``value`` for a fixed key."""
    swaps = {"previous": "base", "base": "previous", "none": "real", "real": "none", "full": "lora"}
    if isinstance(value, list):
        return [value[0]] if len(value) > 1 else ["fresh_data"]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):  # a minimum goes down (it may equal its maximum), anything else up
        return value - 1 if key.endswith("min_new_tokens") else value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.5
    return swaps[value]


def override(key: str, value) -> str:
    text = "[" + ",".join(value) + "]" if isinstance(value, list) else str(value).lower() if isinstance(value, bool) else value
    return f"{key}={text}"


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_every_fixed_key_overridden_is_a_recorded_deviation(name):
    fixed = PROTOCOLS[name]["fixed"]
    config = dotted(resolved(name))
    assert check(name, build_config(PRESETS.get(name)()))["deviations"] == []
    for key in fixed:
        changed = other_value(key, config[key])
        info = check(name, build_config(PRESETS.get(name)(), None, [override(key, changed)]))
        assert [(d["key"], d["run"]) for d in info["deviations"]] == [(key, changed)], (name, key)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["drayson2025", "gerstgrasser2024"])
def test_dry_run_prints_every_fixed_key_overridden(tmp_path, name):
    """The CLI path: `madbench run --dry-run` with all fixed keys overridden names each of them (init_from included)."""
    config = dotted(resolved(name))
    args = [override(k, other_value(k, config[k])) for k in PROTOCOLS[name]["fixed"]]
    proc = madbench("run", "--preset", name, *args, "--dry-run", "--output-dir", tmp_path / name)
    assert proc.returncode == 0, proc.stderr
    line = next(l for l in proc.stdout.splitlines() if "deviates from the published protocol" in l)
    assert "loop.init_from='previous' (protocol: 'base')" in line
    for key in PROTOCOLS[name]["fixed"]:
        assert f" {key}=" in line, (key, line)
