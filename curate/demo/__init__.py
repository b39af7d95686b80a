"""The embedded demo input for `make filter`."""
