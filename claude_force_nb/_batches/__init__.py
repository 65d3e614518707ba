"""The Message Batches wing: the runner, its journal in the cache file, the collector and the remote status."""
