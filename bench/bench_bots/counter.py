"""The counting bench bot (defined in ``bench/counting_bot.py``), for ``find_bots``."""

from bench.counting_bot import bot

__all__ = ["bot"]
