"""The tiny base models of the smoke and tiny presets ship with madbench (madbench/models/tiny.py)."""

import hashlib
import subprocess
import sys
from pathlib import Path

from madbench.config.presets import PRESETS
from madbench.config.run_config import build_config
from madbench.models import tiny
from madbench.models.base_model import resolve_model

ROOT = Path(__file__).resolve().parent.parent


def test_the_presets_start_from_the_packaged_weights_without_pretraining(tmp_path, monkeypatch):
    monkeypatch.setenv("MADBENCH_CACHE", str(tmp_path / "cache"))
    for name in ("smoke", "tiny"):
        folder = Path(resolve_model(build_config(PRESETS.get(name)()), corpus_docs=None))  # no split: nothing may be built
        assert folder.parent == tiny.PACKAGED and (folder / "model.safetensors").is_file()
        assert tiny.read_record(folder)["spec"] == list(tiny.SIZES[tiny.read_record(folder)["size"]])
    assert not (tmp_path / "cache" / "models").exists()


def test_every_shipped_preset_has_its_packaged_model():
    """Fails when SIZES or the presets' data settings change without `python scripts/build_tiny_models.py`."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_tiny_models.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_another_setting_is_still_built_here_and_cached(tmp_path, monkeypatch):
    from madbench.data.corpus import load_split

    monkeypatch.setenv("MADBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(tiny.SIZES, "micro", (512, 32, 1, 2, 64, 3, 32, 4))  # 3 pretraining steps: seconds
    cfg = build_config(PRESETS.get("smoke")(), None, ["model.tiny_size=micro"])
    folder = Path(tiny.build_tiny_model(cfg, load_split(cfg)))
    assert folder.parent == tmp_path / "cache" / "models" and folder.name == tiny.folder_name(cfg)
    record = tiny.read_record(folder)
    assert record["size"] == "micro" and record["built_on"] and record["torch"]  # which processor pretrained it
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert Path(tiny.build_tiny_model(cfg, None)) == folder  # cached: not rebuilt (no split needed)
    assert hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest() == digest
