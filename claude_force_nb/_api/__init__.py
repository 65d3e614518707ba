"""The Messages API wing: the backend over ``AsyncAnthropic``, SDK error translation, pacing to rate limits."""
