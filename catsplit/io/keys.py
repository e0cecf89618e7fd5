"""Metadata keys catsplit writes: one table for head files (safetensors `__metadata__`) and ONNX
models (`metadata_props`), so the readers and writers of both cannot drift apart."""

# --- head files (spec/head-format.md) --------------------------------------------------------
FORMAT_VERSION = "1"
# Files whose output labels leave table order (catsplit.order) are format 2, so that a catsplit that
# predates the key refuses them ("Upgrade catsplit") instead of listing the labels in table order.
ORDERED_FORMAT_VERSION = "2"
READABLE_FORMATS = (FORMAT_VERSION, ORDERED_FORMAT_VERSION)
KEY_FORMAT = "catsplit.format"
KEY_LABELS = "catsplit.labels"  # labels of the base table (head files) / the output columns (ONNX), a JSON list
KEY_TABLES = "catsplit.tables"
KEY_GROUPS = "catsplit.groups"
KEY_HISTORY = "catsplit.history"  # the head's edit records (JSON list)
KEY_KIND = "catsplit.kind"
KEY_SCALE = "catsplit.scale"
KEY_TEMPLATES = "catsplit.templates"
KEY_ORDER = "catsplit.order"  # the output labels in order, when they do not follow the tables (order="keep" splits)
OWN_KEYS = {KEY_FORMAT, KEY_LABELS, KEY_TABLES, KEY_GROUPS, KEY_HISTORY, KEY_KIND, KEY_SCALE, KEY_TEMPLATES, KEY_ORDER}

# --- ONNX models (spec/onnx-contract.md) ------------------------------------------------------
# KEY_FORMAT, KEY_LABELS and KEY_HISTORY are shared with head files; the format value is not.
ONNX_FORMAT_VERSION = "catsplit-onnx/1"  # under KEY_FORMAT in an ONNX model's metadata_props
KEY_OUTPUT = "catsplit.output"  # what the output holds: logits | probabilities | log_probabilities
KEY_HEAD = "catsplit.head"  # how to rebuild the head from the graph (JSON object)
ONNX_LABEL_KEYS = (KEY_LABELS, "labels")  # metadata keys read for a foreign model's labels (JSON list)
