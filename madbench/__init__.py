"""madbench: a benchmark harness for model autophagy (model collapse) in text LMs."""

__version__ = "0.1.0"

import warnings as _warnings

# peft still calls a transformers property deprecated in v5, once per adapter load: in every process
# (CLI, sweep workers, Ray/Slurm jobs) it would flood the log with the same line
_warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


def load_results(run_dir):
    """Typed results of a run folder (see madbench/api.py): ``madbench.load_results("runs/x").to_dataframe()``."""
    from madbench.api import load_results as _load

    return _load(run_dir)


# `madbench.run` is both the `madbench run` verb's module (madbench/run.py, which Python's import system
# binds to this attribute whenever it is imported) and the API call madbench.run(config, output_dir=...):
# the module itself is made callable, so either import order gives a working madbench.run(...).
import types as _types  # noqa: E402


class _CallableRunModule(_types.ModuleType):
    def __call__(self, config=None, output_dir=None, **kwargs):
        """madbench.run(config, output_dir=None, overrides=(), preset='default', plugins=()) -> Results."""
        from madbench.api import run as _run

        return _run(config, output_dir, **kwargs)


from madbench import run  # noqa: E402

run.__class__ = _CallableRunModule
