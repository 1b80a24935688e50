"""Data: phantom radiographs, ingest of RSNA-format folders, multi-resolution preparation."""
