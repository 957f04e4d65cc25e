"""Prompts and samplers: madbench's static-cache sampler and the vLLM backend."""
