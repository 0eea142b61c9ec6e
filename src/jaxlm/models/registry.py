"""Model files ⇄ models (interim: re-exports jaxlm.io.model_file while it is being split)."""
from ..io.model_file import load_model, model_to_dict, read_model_file, required_columns, save_model  # noqa: F401

load = load_model
