"""The response cache: memory in front of a signed SQLite file shared by every kernel on the machine."""

from .response import CacheInfo, ResponseCache
from .stats import CacheStats
from .store import VerifyReport

__all__ = ["CacheInfo", "CacheStats", "ResponseCache", "VerifyReport"]
