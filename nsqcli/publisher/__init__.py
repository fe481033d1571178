"""The bulk publisher: MPUB batches within nsqd's limits, several in flight, retried, counted exactly."""
