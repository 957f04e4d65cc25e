"""Rebuild the tiny base models that ship with madbench (madbench/models/pretrained/).

    python scripts/build_tiny_models.py [--rebuild] # the smoke and tiny presets' models (SHIPPED below)
    python scripts/build_tiny_models.py --check    # exit 1 when one of them is not packaged

Pretraining is deterministic on one processor kind but not across kinds (madbench/models/tiny.py), so
the packaged models are built once and shipped: every machine's tests and ``madbench regress`` start
from the same weights. Rebuilding changes the weights on another processor kind: re-make the regress
reference afterwards (``madbench regress --update``, docs/mitigations.md).
"""

from __future__ import annotations

import argparse
import shutil
import sys

from madbench.config.presets import PRESETS
from madbench.config.run_config import build_config
from madbench.data.corpus import load_split
from madbench.models import tiny

# (preset, overrides): the tests and `madbench regress` use the smoke and tiny presets' models; a plug-in's
# shortened regress (examples/madbench-length-filter) the tiny preset's data with the small model
SHIPPED = (("smoke", ()), ("tiny", ()), ("tiny", ("model.tiny_size=small",)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that every shipped preset's model is packaged")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the packaged models too (new weights on another processor kind)")
    args = parser.parse_args(argv)
    missing = 0
    for name, overrides in SHIPPED:
        cfg = build_config(PRESETS.get(name)(), None, list(overrides))
        name = " ".join([name, *overrides])
        if args.check:
            folder = tiny.packaged_folder(cfg)
            ok = (folder / "config.json").is_file()
            missing += not ok
            print(f"{name}: {folder.name} {'packaged' if ok else 'MISSING'}")
            continue
        split = load_split(cfg)
        folder = tiny.packaged_folder(cfg)
        if folder.exists() and not args.rebuild:
            print(f"{name}: {folder.name} packaged (--rebuild to replace it)")
            continue
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        texts = [d.text for d in split.pool + split.fresh]
        tiny._build(texts, tiny.SIZES[cfg.model.tiny_size], tmp)
        tiny.write_json(tmp / "madbench_tiny.json", tiny.tiny_record(cfg.model.tiny_size, len(texts)))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
        print(f"{name}: wrote {folder}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
