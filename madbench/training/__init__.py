"""Packing a mix into blocks and the accelerate training loop (LoRA or full), with loss-side weights."""
