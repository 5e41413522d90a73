"""The DICOM listener: one pynetdicom AE serving every SCP of the archive."""
