"""Inbound channels: HL7 v2 over MLLP and HTTP, Da Vinci notification messages.

Every message is stored raw before it is acknowledged.
"""
