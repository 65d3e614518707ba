"""The notebook layer: magics, their housekeeping commands, rendering, the stats panel and background runs."""
