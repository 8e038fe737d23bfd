"""Built-in backends; each is a plugin module registered through the same hook as any."""
