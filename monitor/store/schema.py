"""Every table of the project, for Alembic and the schema test: importing this registers them all on ``Base``."""

import monitor.store.app_models  # noqa: F401  (accounts, subscriptions, outbox)
import monitor.store.tickets  # noqa: F401  (tickets, issue 12)
from monitor.store.models import Base

__all__ = ["Base"]
