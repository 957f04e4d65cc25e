"""madbench: a benchmark harness for model autophagy (model collapse) in text LMs."""

__version__ = "0.1.0"

import warnings as _warnings

# peft still calls a transformers property deprecated in v5, once per adapter load: in every process
# (CLI, sweep workers, Ray/Slurm jobs) it would flood the log with the same line
_warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
