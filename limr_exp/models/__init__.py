"""Policy models: load any HF causal LM (`model.path`) or build the toy model, through one path."""

from limr_exp.models.loading import PolicyBundle, load_policy, model_folder, resolve_device

__all__ = ["PolicyBundle", "load_policy", "model_folder", "resolve_device"]
