"""FHIR R4 vocabulary: resource types, validation, references, dates, OperationOutcome."""
