"""Date and time formats, answered before Django's own locale formats (FORMAT_MODULE_PATH)."""
