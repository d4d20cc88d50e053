"""Workarounds for bugs and surprises of the libraries we build on, one module per library.

Each module names the version it was checked with (`CHECKED_WITH`); tests/common/
test_library_fixes.py fails when the installed version differs, so that an upgrade is the
moment to re-check each fix and retire the ones no longer needed, here and nowhere else.
"""
