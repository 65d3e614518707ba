"""The response cache: memory in front of a signed SQLite file shared by every kernel on the machine."""

from .database import CACHE_FILENAME, OFFLINE_CACHE_FILENAME
from .integrity import VerifyReport
from .response import API, FILE, MEMORY, SHARED, TEAM, CacheInfo, ResponseCache, check_mode
from .stats import CacheStats, TeamStatus

__all__ = [
    "API",
    "CACHE_FILENAME",
    "FILE",
    "MEMORY",
    "OFFLINE_CACHE_FILENAME",
    "SHARED",
    "TEAM",
    "CacheInfo",
    "CacheStats",
    "ResponseCache",
    "TeamStatus",
    "VerifyReport",
    "check_mode",
]
