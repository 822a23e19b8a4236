"""vidsearch's benchmarks: run each from the repository root as `python -m benchmarks.NAME` (`--quick` for a run of
seconds on tiny data, as tests/test_benchmarks.py does); their shared helpers are in benchmarks/common.py."""
