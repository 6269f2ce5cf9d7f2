"""Server-side apply's field ownership engine (upstream: structured-merge-diff + managedfields).

Pure: no I/O, no kajitori imports beyond ``machinery``. ``fieldpath`` holds
sets of field paths and their FieldsV1 wire form; ``typed`` walks objects by
their schema's structural markers (field sets, compare, merge, removal);
``managers`` keeps ``metadata.managedFields`` for updates and applies and
detects apply conflicts. The registry calls ``managers.update`` on every
write and the PATCH handler ``managers.apply`` for apply patches.
"""
