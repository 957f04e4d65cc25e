"""Config: presets, files and dotted overrides resolve into a frozen, hashable RunConfig."""

from __future__ import annotations

import dataclasses
import re

import pytest

from madbench.config.run_config import RunConfig, build_config, from_dict, parse_override
from madbench.errors import MadbenchError
from madbench.config.presets import PRESETS


def test_overrides_are_typed_and_nested():
    cfg = build_config(PRESETS.get("smoke")(), None, ["loop.generations=4", "sampling.temperature=0.7",
                                                      "loop.seeds=[1,2]", "loop.regimes=fully_synthetic,fresh_data/accumulate"])
    assert cfg.loop.generations == 4 and cfg.sampling.temperature == 0.7
    assert cfg.loop.seeds == (1, 2) and cfg.loop.regimes == ("fully_synthetic", "fresh_data/accumulate")
    assert cfg.model.name == "tiny"  # from the preset


def test_mitigation_sets_parse_from_cli_and_yaml_forms():
    cfg = build_config({}, None, ["loop.mitigations=[none, mix_real, mix_real+mix_real]"])
    assert cfg.loop.mitigations == ((), ("mix_real",), ("mix_real", "mix_real"))
    cfg = build_config({"loop": {"mitigations": [[], ["mix_real"]]}})
    assert cfg.loop.mitigations == ((), ("mix_real",))


def test_config_file_then_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: exp\nloop:\n  generations: 7\nsampling:\n  top_p: 0.8\n")
    cfg = build_config(PRESETS.get("default")(), str(path), ["loop.generations=2"])
    assert (cfg.name, cfg.loop.generations, cfg.sampling.top_p) == ("exp", 2, 0.8)


def test_frozen_round_trip_and_hash():
    cfg = build_config(PRESETS.get("smoke")())
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 3  # type: ignore[misc]
    again = from_dict(cfg.to_dict())
    assert again == cfg and again.hash() == cfg.hash()
    assert build_config(PRESETS.get("smoke")(), None, ["sampling.top_p=0.5"]).hash() != cfg.hash()


def test_defaults_are_the_embedded_model_and_corpus():
    cfg = RunConfig()
    assert cfg.model.name == "smollm2-135m" and cfg.data.corpus == "kjv"
    assert set(cfg.loop.regimes) == {"fully_synthetic", "synthetic_augmentation", "fresh_data"}
    assert cfg.model.trust_remote_code is False


@pytest.mark.parametrize("text,message", [
    ("loop.real_fraction=1.5", "loop.real_fraction must be in [0, 1]"),
    ("loop.init_from=scratch", "loop.init_from must be"),
    ("sampling.prompt=maybe", "sampling.prompt must be"),
    ("model.trust_remote_code=perhaps", "expects bool"),
])
def test_bad_values(text, message):
    with pytest.raises(MadbenchError, match=re.escape(message)):
        build_config({}, None, [text])


def test_parse_override_requires_key_value():
    assert parse_override("a.b=3") == {"a": {"b": 3}}
    with pytest.raises(MadbenchError, match="key=value"):
        parse_override("a.b")


def test_yaml_booleans_mean_words_for_string_fields(tmp_path):
    assert build_config({}, None, ["train.mixed_precision=no"]).train.mixed_precision == "no"
    path = tmp_path / "exp.yaml"
    path.write_text("train:\n  mixed_precision: no\nmodel:\n  trust_remote_code: no\n")
    cfg = build_config({}, str(path))
    assert cfg.train.mixed_precision == "no" and cfg.model.trust_remote_code is False
    assert build_config({}, None, ["model.trust_remote_code=off"]).model.trust_remote_code is False


def test_nested_mappings_deep_merge_across_file_preset_and_overrides(tmp_path):
    """Defect: mitigation_params.dedup.shingle=2 after .threshold=0.3 used to drop the threshold."""
    cfg = build_config(PRESETS.get("smoke")(), None, ["loop.mitigations=[[dedup]]", "mitigation_params.dedup.threshold=0.3",
                                                      "mitigation_params.dedup.shingle=2"])
    assert cfg.mitigation_params == {"dedup": {"threshold": 0.3, "shingle": 2}}
    path = tmp_path / "exp.yaml"
    path.write_text("mitigation_params:\n  dedup: {threshold: 0.4, num_perm: 64}\n  mix_real: {fraction: 0.2}\n")
    cfg = build_config({"mitigation_params": {"dedup": {"oversample": 2.0}}}, str(path), ["mitigation_params.dedup.shingle=2"])
    assert cfg.mitigation_params == {"dedup": {"oversample": 2.0, "threshold": 0.4, "num_perm": 64, "shingle": 2},
                                     "mix_real": {"fraction": 0.2}}
