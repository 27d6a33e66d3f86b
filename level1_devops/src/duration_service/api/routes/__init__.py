"""Route modules: ``predict`` (the model) and ``ops`` (health, readiness, model, metrics)."""
