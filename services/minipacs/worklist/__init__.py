"""The Modality Worklist: Scheduled Procedure Steps kept in PostgreSQL."""
