"""The WSGI entry point for a production server: ``gunicorn wsgi:app``.

Settings come from the environment (``MSPMON_CONFIG``, ``MSPMON_*``); the app
refuses to start without a ``secret_key`` or on an out-of-date schema.
"""

from web import create_app

app = create_app()
