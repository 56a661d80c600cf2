"""The gateway: OpenAI- and Anthropic-compatible routes that price, record and forward every call."""
