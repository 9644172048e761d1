"""Development: ``make run``'s runner, which turns a saved module in ``handlers/`` into a live bot.

:mod:`.catalog` reads what the bots declare, :mod:`.workplace` provisions them in the local Workplace,
:mod:`.envfile` keeps their credentials in the dev .env, :mod:`.watch` notices saves, and :mod:`.runner`
runs the emulator and the bot server and ties these together. Nothing here runs in production.
"""
