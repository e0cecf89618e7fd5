"""Speed and check scripts of the benchmark, each run with ``python -m catsplit.bench.tools.<name>``:
chain_speed (a chain of edits), split_speed (split latency per method), scale (split-and-save of a
large head), export_speed (onnxruntime against torch) and export_check (a trained benchmark model
split, exported and checked end to end)."""
