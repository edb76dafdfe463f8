"""Django's SQLite backend with write transactions queued in the process (see ``base``)."""
