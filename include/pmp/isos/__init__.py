"""One package per ISO. Each exposes ``ADAPTER`` and ``DATASETS`` (see :mod:`pmp.registry`)."""
