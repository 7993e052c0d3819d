"""Benchmarks: run as scripts (``python bench/NAME.py``); ``bench.common`` is also what the tests import for shared fixtures-as-files (the synthetic DNG writer)."""
