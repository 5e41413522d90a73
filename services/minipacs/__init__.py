"""Mini PACS: a small, fast, trustworthy DICOM archive."""
