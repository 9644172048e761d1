"""Benchmarks for ``make bench``: each prints ratios against a floor measured in the same run.

The floor is a bare Flask endpoint (``bench/floor.py``); ``bench/run.py`` runs everything.
"""
