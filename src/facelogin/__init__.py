"""facelogin: face login for a Raspberry Pi, kept in step with an images/<User>/ folder."""

__version__ = "0.1.0"
