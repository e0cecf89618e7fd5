"""catsplit.model_edit: `catsplit.apply` — a copy of a live torch model with its classifier swapped for the edited
head (found by the head's original rows, or by key=), the input model untouched, Hugging Face config labels
updated; tiny randomly initialised VideoMAE, TimeSformer and ViViT models and plain torch models."""

import warnings

import numpy as np
import pytest
import torch

import catsplit
from catsplit import CatsplitError, Head
from catsplit.model_edit import find_layer
from catsplit.modules import GatedHead
from hf_models import COARSE, LABELS, SUBS, clips, model_head, tiny_model


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _features(model, x):
    """What the model's classifier layer is fed."""
    seen = []
    handle = model.classifier.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].detach()))
    with torch.no_grad():
        model(pixel_values=x)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize("kind", ["videomae", "timesformer", "vivit"])
def test_apply_swaps_the_classifier_of_a_copy_and_updates_the_config(kind, tmp_path):
    model = tiny_model(kind)
    before = _state(model)
    edited = catsplit.split(model_head(model), None, COARSE, SUBS, method="coarse", order="keep")
    new = catsplit.apply(model, edited)
    assert new is not model and new.classifier is not model.classifier
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the input is untouched
    assert model.config.id2label == dict(enumerate(LABELS)) and model.config.num_labels == len(LABELS)
    assert type(new.classifier) is torch.nn.Linear and torch.equal(new.classifier.weight, edited.weight)
    assert new.config.id2label == dict(enumerate(edited.labels))
    assert new.config.label2id == {lab: i for i, lab in enumerate(edited.labels)}
    assert new.config.num_labels == new.num_labels == edited.num_classes
    x = clips(3)
    with torch.no_grad():
        old_logits, new_logits = model(pixel_values=x).logits, new(pixel_values=x).logits
    assert new_logits.shape == (3, len(LABELS) + len(SUBS) - 1)
    others = [i for i, lab in enumerate(LABELS) if lab != COARSE]  # keep: the same columns
    np.testing.assert_allclose(new_logits[:, others].numpy(), old_logits[:, others].numpy(), rtol=1e-5, atol=1e-6)
    loss = new(pixel_values=x, labels=torch.tensor([0, edited.num_classes - 1, 2])).loss  # the loss takes the new classes
    assert torch.isfinite(loss)
    # saved and loaded by transformers: the labels and the head as catsplit made them
    new.save_pretrained(tmp_path / "edited")
    back = type(model).from_pretrained(tmp_path / "edited")
    assert back.config.id2label == new.config.id2label and torch.equal(back.classifier.weight, edited.weight)


def test_apply_a_hierarchical_head_gives_log_probabilities_with_the_gate():
    model = tiny_model()
    edited = catsplit.split(model_head(model), None, COARSE, SUBS, method="coarse", mode="hierarchical", order="keep")
    new = catsplit.apply(model, edited)
    assert isinstance(new.classifier, GatedHead) and not new.classifier.training
    x = clips(4)
    with torch.no_grad():
        got = new(pixel_values=x).logits
    assert torch.equal(got, edited.logits(_features(model, x)))
    assert new.config.id2label[LABELS.index(COARSE)] == SUBS[0]


class TwoHeads(torch.nn.Module):
    """A backbone feeding two linear layers of the same shape (e.g. a classifier and an auxiliary head)."""

    def __init__(self, c=5, d=8):
        super().__init__()
        torch.manual_seed(1)
        self.body = torch.nn.Sequential(torch.nn.Linear(4, d), torch.nn.ReLU())
        self.aux = torch.nn.Linear(d, c)
        self.heads = torch.nn.ModuleList([torch.nn.Linear(d, c)])

    def forward(self, x):
        f = self.body(x)
        return self.heads[0](f), self.aux(f)


def _head_of(layer, labels=LABELS):
    return Head(weight=layer.weight.detach().clone(), bias=layer.bias.detach().clone(), labels=labels)


def test_apply_finds_the_layer_by_the_heads_original_rows_among_layers_of_one_shape():
    model = TwoHeads()
    edited = catsplit.split(_head_of(model.heads[0]), None, COARSE, SUBS, method="coarse")
    edited = catsplit.split(edited, None, "Holding something", ["Holding something a", "Holding something b"], method="coarse")
    new = catsplit.apply(model, edited)
    assert torch.equal(new.heads[0].weight, edited.weight) and torch.equal(new.aux.weight, model.aux.weight)
    assert new.aux is not model.aux  # a deep copy: nothing is shared with the input
    assert find_layer(model, edited) == "heads.0"
    assert find_layer(model, edited, key="aux.weight") == "aux"


def test_several_candidates_without_the_original_rows_are_an_error_naming_them():
    model = TwoHeads()
    stranger = Head(weight=torch.randn(5, 8), labels=LABELS)
    edited = catsplit.split(stranger, None, COARSE, SUBS, method="coarse")
    with pytest.raises(CatsplitError, match=r"several layers.*'aux', 'heads.0'.*\[5, 8\].*pass key=NAME"):
        catsplit.apply(model, edited)
    new = catsplit.apply(model, edited, key="aux")
    assert torch.equal(new.aux.weight, edited.weight) and torch.equal(new.heads[0].weight, model.heads[0].weight)


def test_a_single_layer_of_the_shape_with_other_weights_is_used_with_a_warning():
    layer = torch.nn.Linear(8, 5)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), layer)
    edited = catsplit.split(Head(weight=torch.randn(5, 8), labels=LABELS), None, COARSE, SUBS, method="coarse")
    with pytest.warns(UserWarning, match="'1' has the head's shape but not its original weights"):
        new = catsplit.apply(model, edited)
    assert torch.equal(new[1].weight, edited.weight)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        catsplit.apply(model, edited, key="1")  # named: no warning


def test_bad_keys_and_inputs_are_refused():
    model = TwoHeads()
    edited = catsplit.split(_head_of(model.aux), None, COARSE, SUBS, method="coarse")
    with pytest.raises(CatsplitError, match="no linear layer named 'axu'; did you mean 'aux'"):
        catsplit.apply(model, edited, key="axu")
    with pytest.raises(CatsplitError, match="layer 'body.0' takes 4 features, the head 8"):
        catsplit.apply(model, edited, key="body.0")
    with pytest.raises(CatsplitError, match="no linear layer of the model has the head's original shape"):
        catsplit.apply(torch.nn.Sequential(torch.nn.Linear(8, 3)), edited)
    with pytest.raises(CatsplitError, match="torch.nn.Module"):
        catsplit.apply(edited, edited)
    with pytest.raises(CatsplitError, match="catsplit.Head"):
        catsplit.apply(model, model)


def test_the_layers_dtype_device_mode_and_trainability_are_kept():
    model = TwoHeads().half()
    model.heads.train()
    for p in model.heads.parameters():
        p.requires_grad_(False)
    edited = catsplit.split(_head_of(model.heads[0]).evolve(), None, COARSE, SUBS, method="coarse")
    new = catsplit.apply(model, edited)
    layer = new.heads[0]
    assert layer.weight.dtype == torch.float16 and layer.training and not layer.weight.requires_grad
    lone = torch.nn.Linear(8, 5)
    assert isinstance(catsplit.apply(lone, _head_of(lone)), torch.nn.Linear)  # the model is the layer itself
