"""Storage: the Repository (the only writer of resources), units of work and the schema."""
