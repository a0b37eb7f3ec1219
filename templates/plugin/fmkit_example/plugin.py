"""Registration: components are declared with import strings so listing stays fast."""
from fmkit import Component, hookimpl

#: the fmkit hook-API versions this plugin supports
fmkit_api = ">=1.0,<2"


@hookimpl
def fmkit_register_models():
    return [Component("model", "fmkit_example-bag-of-embeddings", "fmkit_example.components:bag_of_embeddings",
                      "fmkit_example.components:BagParams", "Mean of token embeddings, then a linear head",
                      {"dim": 16}, tags={"tasks": ["text-classification"]})]


@hookimpl
def fmkit_register_losses():
    return [Component("loss", "fmkit_example-focal", "fmkit_example.components:focal",
                      "fmkit_example.components:FocalParams", "Focal loss for imbalanced classes", {"gamma": 2.0})]
