"""The package ``make bench`` serves (``HANDLERS=bench.bench_bots``): only the counting bench bot.

A package of its own, because ``find_bots`` imports every module of the package it is given and
the rest of ``bench/`` imports the example bots.
"""
