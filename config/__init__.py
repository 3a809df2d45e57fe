"""mspmon configuration: one validated, frozen ``Settings`` per process."""

from config.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
