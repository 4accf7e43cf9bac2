"""What gets published: posts with their targets and the checks they pass, and media assets with their formats and URL tokens."""
