"""Method adapters. Each module owns one engine's quirks behind the contract in ``base``."""
