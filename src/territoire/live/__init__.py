"""Live updates: alarm and work-order changes streamed to signed-in browsers (SSE)."""
