"""absl command-line apps: training, evaluation, reproduction, benchmarks."""
