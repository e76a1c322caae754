"""Printable documents: HTML to PDF and static charts, deterministic (decision 0600). Imports nothing of radmon."""
