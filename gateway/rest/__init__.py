"""FHIR RESTful interactions over the Repository, independent of any web framework."""
