"""Features: the CHS-DRG casemix engine and point-in-time case features."""
