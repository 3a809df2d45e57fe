"""Every table of the project, for Alembic and the schema test.

The core tables live in ``monitor.models``; the digest (``monitor.subscriptions``)
and web (``monitor.accounts``, ``monitor.cube``) areas keep their own tables next to
the code that owns them. Importing this module registers them all on ``Base``.
"""

from monitor.models import Base
import monitor.accounts  # noqa: F401
import monitor.cube  # noqa: F401
import monitor.subscriptions  # noqa: F401

__all__ = ["Base"]
