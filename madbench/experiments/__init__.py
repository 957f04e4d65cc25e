"""Many runs at once: sweeps (local, Ray, Slurm), the regression check, threshold search, speed bench."""
