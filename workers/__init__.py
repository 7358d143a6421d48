"""Background workers (arq): settings and thin tasks."""
