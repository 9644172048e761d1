"""The bot the Celery inbox tests run in real worker processes."""
