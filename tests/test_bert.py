"""itr.models.bert against transformers itself: the same token ids, weights, initialisation, and outputs and gradients
bit for bit (anything less makes training drift from the numbers measured with transformers)."""
import pytest
import torch
import transformers

from itr.models.bert import BertConfig, BertModel, Tokenizer, additive_mask
from itr.models.encoder import resolve_text_encoder
from itr.models.tiny import make_tiny_bert

TEXTS = ["A red circle above TWO blue squares", "zorbleflax", "un cercle rouge à gauche d'un carré", "small " * 40, ""]


@pytest.fixture(scope="module", params=["minilm", "tiny"])
def folder(request, tmp_path_factory):
    if request.param == "minilm":
        return resolve_text_encoder("minilm")
    return make_tiny_bert(tmp_path_factory.mktemp("tiny"), dropout=0.3)


def test_token_ids_are_the_fast_tokenizers_of_transformers(folder):
    ours, theirs = Tokenizer.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder)
    for kwargs in (dict(padding=True, truncation=True, max_length=16), dict(padding=True, truncation=True, max_length=128)):
        a, b = ours(TEXTS, return_tensors="pt", **kwargs), theirs(TEXTS, return_tensors="pt", **kwargs)
        assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["attention_mask"], b["attention_mask"])
    assert ours("red circle", add_special_tokens=False)["input_ids"] == theirs("red circle", add_special_tokens=False)[
        "input_ids"]
    assert ours(TEXTS[:2])["input_ids"] == theirs(TEXTS[:2])["input_ids"]  # neither padded nor cut
    with pytest.raises(ValueError, match="truncation needs max_length"):
        ours(TEXTS, truncation=True)


def test_outputs_and_gradients_equal_transformers_bert_on_the_same_checkpoint(folder):
    ours, theirs = BertModel.from_pretrained(folder), transformers.BertModel.from_pretrained(folder,
                                                                                             add_pooling_layer=False)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    assert not ours.training and not theirs.training  # both load in eval mode
    # a batch of 30: position gradients summed over (B, T) ids, in another order than transformers', differed on 24
    # and 30 captions and were equal on 5
    batch = Tokenizer.from_pretrained(folder)(TEXTS * 6, padding=True, truncation=True, max_length=24,
                                              return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    for train in (False, True):  # in training, dropout draws the same masks in the same order
        ours.train(train), theirs.train(train)
        torch.manual_seed(1)
        a = ours(ids, mask).last_hidden_state
        torch.manual_seed(1)
        b = theirs(input_ids=ids, attention_mask=mask).last_hidden_state
        assert torch.equal(a, b), (train, (a - b).abs().max())  # bit for bit: training must not drift
    a.pow(2).sum().backward(), b.pow(2).sum().backward()
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():  # bit for bit: (B, T) position ids once summed the batch in another order
        assert torch.equal(p.grad, grads[name].grad), (name, (p.grad - grads[name].grad).abs().max())
    # the encoder alone, on embeddings the caller made, under an additive mask (the single-stream model's use)
    ours.eval(), theirs.eval()
    embeds = ours.embeddings(input_ids=ids, token_type_ids=torch.ones_like(ids), position_ids=ids % 5)
    assert torch.equal(embeds, theirs.embeddings(input_ids=ids, token_type_ids=torch.ones_like(ids),
                                                 position_ids=ids % 5))
    assert torch.equal(ours.encoder(embeds, attention_mask=additive_mask(mask, embeds.dtype)).last_hidden_state,
                       theirs.encoder(embeds, attention_mask=additive_mask(mask, embeds.dtype)).last_hidden_state)


def test_loading_leaves_the_random_state_as_transformers_loading_does(folder):
    """What a model adds on a loaded tower (heads, projections) initialises as it did on transformers' tower."""
    for load in (BertModel.from_pretrained, lambda f: transformers.BertModel.from_pretrained(f, add_pooling_layer=False)):
        torch.manual_seed(3)
        load(folder)
        after = torch.rand(4)
        torch.manual_seed(3)
        assert torch.equal(after, torch.rand(4))


def test_a_new_model_initialises_as_transformers_does_and_its_config_round_trips(folder):
    config = transformers.BertConfig.from_pretrained(folder).to_dict()
    torch.manual_seed(0)
    ours = BertModel(BertConfig.from_dict(config))
    torch.manual_seed(0)
    theirs = transformers.BertModel(transformers.BertConfig.from_dict(config), add_pooling_layer=False)
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), name
    assert BertConfig.from_dict(ours.config.to_dict()).to_dict() == ours.config.to_dict()
    assert ours.config.to_dict()["vocab_size"] == config["vocab_size"]


def test_a_tokenizer_config_that_disagrees_with_the_tokenizer_file_wins_as_in_transformers(tmp_path):
    """transformers' BertTokenizerFast rebuilds the normaliser from tokenizer_config.json (do_lower_case, ...)."""
    import json
    import shutil

    folder = shutil.copytree(resolve_text_encoder("minilm"), tmp_path / "cased")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "do_lower_case": False}))
    ours, theirs = Tokenizer.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder)
    assert ours(["A Red Circle"])["input_ids"] == theirs(["A Red Circle"])["input_ids"]
    assert ours(["A Red Circle"])["input_ids"] != Tokenizer.from_pretrained(resolve_text_encoder("minilm"))(
        ["A Red Circle"])["input_ids"]  # cased: the capitalised words are other tokens


def test_tensorflow_era_layer_norm_names_load(folder, tmp_path):
    from safetensors.torch import load_file, save_file
    import shutil

    old = shutil.copytree(folder, tmp_path / "old")
    weights = load_file(old / "model.safetensors")
    save_file({k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
               for k, v in weights.items()}, old / "model.safetensors")
    for (name, a), b in zip(BertModel.from_pretrained(old).state_dict().items(),
                            BertModel.from_pretrained(folder).state_dict().values()):
        assert torch.equal(a, b), name


def test_what_this_bert_cannot_read_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="position_embedding_type 'relative_key': only absolute"):
        BertConfig(position_embedding_type="relative_key")
    with pytest.raises(ValueError, match="hidden_act 'swish' is not supported"):
        BertConfig(hidden_act="swish")
    with pytest.raises(FileNotFoundError, match="no model.safetensors or pytorch_model.bin"):
        (tmp_path / "config.json").write_text("{}")
        BertModel.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        Tokenizer.from_pretrained(tmp_path)
