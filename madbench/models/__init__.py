"""The base model (embedded SmolLM2 or the tiny model), LoRA or full weights, CPU fast paths."""
