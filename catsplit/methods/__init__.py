"""Zero-shot methods: each maps a SplitContext to the k new rows [k, D] (float32) of a split.

`registry.METHODS` lists them by name; `base.Method` is the record each one registers.
"""
