"""Modality Performed Procedure Step instances, linked to the worklist."""
