"""Contacts in and out as CSV files: an import with a preview, a mapping and live progress, run by workers
in batches that resume after a crash; an export of any filter or segment, streamed or prepared by a worker."""
