"""Declarative mappings (mappings/) applied to inbound messages and source formats.

Pure: no database, no HTTP.
"""
