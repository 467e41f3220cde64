"""The broker's tables and their migrations."""
