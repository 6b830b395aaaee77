"""medtune: DICOM folder + labels -> tuned, registered, honestly tested classifier."""

__version__ = "0.1.0"
