"""Running raters over items: concurrency, retries, resume, accounting."""
