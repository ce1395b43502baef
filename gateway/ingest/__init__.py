"""Inbound channels: HL7 v2 over MLLP and HTTP, Da Vinci notification messages; every message stored raw before it is acknowledged."""
