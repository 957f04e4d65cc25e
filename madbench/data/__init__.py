"""Human corpora and the fixed split (held-out, pool, fresh slices), with their checks."""
