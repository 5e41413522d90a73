"""The patient/study/series/instance index in PostgreSQL."""
