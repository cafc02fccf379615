"""Local stand-ins for the services the bot talks to, for tests, benchmarks and demos."""
