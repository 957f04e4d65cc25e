"""Task scores through EleutherAI lm-eval, with madbench's lm-eval model and the local tasks (package data)."""
