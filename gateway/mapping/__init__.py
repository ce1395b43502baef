"""Declarative mappings (mappings/) applied to inbound messages and source formats; pure: no database, no HTTP."""
