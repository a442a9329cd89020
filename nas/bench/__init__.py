"""Ground-truth benchmarks of a search space (`nas bench build`) and their outputs."""
