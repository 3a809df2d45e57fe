"""Storage: the schema (``models``), engines and migrations (``db``) and the queries (``queries``).

The query functions are re-exported here, so callers write ``store.current_findings(session)``.
"""

from monitor.store.queries import (
    BASE_INSERT_COLUMNS,
    LOOKUP_CHUNK,
    Registry,
    RegistryFull,
    add_transition,
    current_findings,
    dimension_slots,
    dimension_values,
    existing_responses,
    find_transition,
    insert_columns,
    insert_responses,
    latest_run,
    list_transitions,
    period_index,
    record_import_run,
    source_has_responses,
    try_lock_imports,
    update_responses,
    used_slots,
)

__all__ = [
    "LOOKUP_CHUNK",
    "period_index",
    "RegistryFull",
    "Registry",
    "try_lock_imports",
    "BASE_INSERT_COLUMNS",
    "used_slots",
    "insert_columns",
    "source_has_responses",
    "existing_responses",
    "insert_responses",
    "update_responses",
    "record_import_run",
    "dimension_slots",
    "add_transition",
    "list_transitions",
    "find_transition",
    "dimension_values",
    "latest_run",
    "current_findings",
]
