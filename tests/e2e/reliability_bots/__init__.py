"""The bot the reliability suite serves under gunicorn: one reply per message, and a record of each run."""
