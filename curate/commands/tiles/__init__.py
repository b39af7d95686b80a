"""`curate tiles`: the image plan of given sizes (issue 18)."""
