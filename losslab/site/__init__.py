"""The site's plumbing: the build, the JavaScript it serves, the Sphinx extension, tables."""
