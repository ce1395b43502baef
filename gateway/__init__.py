"""FHIR R4 care-coordination gateway."""

__version__ = "0.1.0"
