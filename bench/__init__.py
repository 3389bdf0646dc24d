"""Benchmarks of the pipeline's steps on generated exports (run as ``python -m bench.<name>``)."""
