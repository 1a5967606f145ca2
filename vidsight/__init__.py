"""Glue that belongs to no single stage: the one settings object and the Ray pipeline wiring."""
