"""DICOM reading, ingest, preprocessing and the sample cohort writer."""
