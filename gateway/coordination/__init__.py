"""Care-coordination workflows: one unit of work each, written through the repository."""
