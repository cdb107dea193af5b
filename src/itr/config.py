"""Typed configuration: params.yaml is validated once, then split into dataclasses.

The library never reads params.yaml itself. The CLI (or Snakemake, through the CLI)
hands each stage the section it needs as a JSON object, which becomes one of the
dataclasses below. Unknown keys are errors everywhere: a misspelled hyperparameter
that is silently ignored is the most expensive bug a sweep can have. Missing keys are
errors too (unless the stage declares it does not read them, STAGE_UNREAD): a key that
falls back on a dataclass default is one whose edit in params.yaml changes nothing.

params.yaml is the one source of values. The dataclass defaults repeat it, so that code
and tests building a config by hand get the shipped values; tests/test_config_sources.py
checks that the fields are the schema's keys and the defaults params.yaml's values. Reading and validating
the whole params file is itr.params; the section machinery (unknown and missing keys, schema checks) itr.sections.

Example:
    >>> params = itr.params.load_params("params.yaml")          # validates against the schema
    >>> cfg = BEConfig.from_dict({**params["be"], "seed": params["seed"]})
    >>> cfg.margin
    0.1
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

from itr.sections import SCHEMA_PATH, ConfigError, Section, check_section, number_items, params_hash, schema

__all__ = ["SCHEMA_PATH", "ConfigError", "number_items", "params_hash", "schema", "parse_section"]  # and the sections


# Keys of a params section that a workflow stage (a rule's name; its CLI command looks up the same entry) does not
# read. The rule leaves them out of its --config, so editing them does not rerun it, and the CLI accepts their
# absence: the dataclass then holds its default, params.yaml's value, which that stage never reads.
STAGE_UNREAD: dict[str, dict[str, tuple[str, ...]]] = {
    # Shortlists of depth max(k, *ks); fusion weights and the table protocol are the evaluation's business,
    # and the test groups come from n_folds and subset_size.
    "rerank_score": {"rerank": ("lambdas", "protocol"), "evaluation": ("protocols", "ks")},
    # A sweep's depth and fusion variants of a cell (--variants-dir: k, ks and lambdas).
    "rerank_evaluate_variants": {"rerank": ("batch_size", "precision", "protocol"), "evaluation": ("protocols",)},
    # The k = rerank.k cell only.
    "rerank_evaluate": {"rerank": ("ks", "lambdas", "batch_size", "precision", "protocol"),
                        "evaluation": ("protocols",)},
    # Where the weights file came from is the fetch rule's business; extraction reads the file.
    "pretrained_features": {"pretrained_features": ("weights_urls",)},
    # Training reads a method's model and loss keys; a dual transformer's inference settings and the sweeps and
    # budget of the ablations (its paper's plan reads those) are not training's.
    "train": {"dual": ("theta", "k", "theta_sweep", "k_sweep", "slack_sweep", "ablation_train_images",
                       "ablation_epochs"),
              # the STS pairs: the uni-modal evaluation's; sweeps: the paper plan's (ablation students); cost: the
              # benchmark's (benchmarks/softlabel_cost.py); the pixel tower: the pixel students' (a plan override)
              "softlabel": ("sts_pairs", "alpha_sweep", "beta_sweep", "cost", "ablation_epochs", "pixel_tower")},
}


def unread_keys(stage: str | None, section: str) -> tuple[str, ...]:
    """Keys of params section ``section`` that ``stage`` (a STAGE_UNREAD key; None: it reads all) does not read."""
    return STAGE_UNREAD[stage].get(section, ()) if stage else ()


@dataclasses.dataclass(frozen=True)
class ShapesConfig(Section):
    """ShapeCaptions generator settings (see itr.data.shapes)."""
    SECTION = "shapes"
    image_size: int = 128
    n_train: int = 2000
    n_val: int = 200
    n_test: int = 1000
    min_objects: int = 1
    max_objects: int = 4
    twin_fraction: float = 0.5
    captions_per_image: int = 5
    noise: float = 0.08
    domain: str = "plain"  # visual domain, itr.data.shapes.DOMAINS
    languages: tuple = ("en",)  # caption languages, itr.data.captions.LANGUAGES
    seed: int = 0

    @classmethod
    def cross_problems(cls, d: dict) -> list[str]:
        low, high = d.get("min_objects", cls.min_objects), d.get("max_objects", cls.max_objects)
        return [f"'shapes.min_objects' ({low}) exceeds 'shapes.max_objects' ({high})"] if low > high else []


@dataclasses.dataclass(frozen=True)
class DetectorConfig(Section):
    """Faster R-CNN trained from scratch on ShapeCaptions boxes."""
    SECTION = "detector"
    epochs: int = 6
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    channels: tuple = (16, 32, 64)
    representation_size: int = 256
    anchor_sizes: tuple = (12, 24, 48)
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class FeaturesConfig(Section):
    """Region feature extraction: top-R detections per image, written in shards."""
    SECTION = "features"
    max_regions: int = 10
    score_thresh: float = 0.2
    shard_size: int = 512
    batch_size: int = 32


@dataclasses.dataclass(frozen=True)
class PretrainedFeaturesConfig(Section):
    """Region features of real photos by torchvision's COCO Faster R-CNN (itr.features.pretrained): boxes scoring
    at least score_thresh, at least min_regions and at most max_regions (bottom-up attention's adaptive 10-100;
    min = max = 36 is its fixed release), images rescaled to min_size..max_size px."""
    SECTION = "pretrained_features"
    arch: str = "fasterrcnn_resnet50_fpn_v2"
    weights: str = "models/pretrained/fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth"
    weights_urls: tuple[str, ...] = ("https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth",)
    min_size: int = 600
    max_size: int = 1000
    proposals: int = 300
    min_regions: int = 10
    max_regions: int = 100
    score_thresh: float = 0.2
    shard_size: int = 512
    batch_size: int = 4

    @classmethod
    def cross_problems(cls, d: dict) -> list[str]:
        low, high = d.get("min_regions", cls.min_regions), d.get("max_regions", cls.max_regions)
        return [f"'pretrained_features.min_regions' ({low}) exceeds 'max_regions' ({high})"] if low > high else []


@dataclasses.dataclass(frozen=True)
class TextEncoderConfig(Section):
    SECTION = "text_encoder"
    path: str = "minilm"
    max_text_len: int = 32
    layers: str = "all"  # or "every_other": the half-size models of Figure 4 (itr.models.encoder)


@dataclasses.dataclass(frozen=True)
class _TrainSection(Section):
    """What every training method shares: AdamW, linear decay, gradient clipping, precision, seed."""
    epochs: int = 2
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    precision: str = "fp32"
    # 0 = one pass over the training captions per epoch; N > 0 = N steps over a fresh shuffle of them, a budget
    # independent of the data size (the four-language models of Tables 2 and 7 use it).
    steps_per_epoch: int = 0
    # 0 = every training image; N > 0 = the first N training images and all their captions (Figure 3's
    # sample efficiency, and the small budget of the auxiliary tables).
    train_images: int = 0
    # caption languages trained and validated on; () = every language of the dataset (Table 7 of Retrieve Fast,
    # Rerank Smart on Multi30k: English alone, ("en",))
    train_languages: tuple = ()
    seed: int = 0

    def full_pass_steps(self, n_captions: int) -> int:
        """Steps of one pass over ``n_captions`` training captions (the last batch may be short)."""
        return -(-n_captions // self.batch_size)

    def epoch_steps(self, n_captions: int) -> int:
        """Steps of one epoch over ``n_captions`` training captions: ``steps_per_epoch``, or one full pass; none when
        ``epochs`` is 0 (the initial model is validated and published unchanged)."""
        return (self.steps_per_epoch or self.full_pass_steps(n_captions)) if self.epochs else 0


@dataclasses.dataclass(frozen=True)
class BEConfig(_TrainSection):
    """Bi-encoder training (Geigle et al. 2022, §3.2): triplet loss with in-batch hardest negatives."""
    SECTION = "be"
    margin: float = 0.1
    all_negatives_warmup_steps: int = 150
    # ANCE (appendix A.3 of the first version): a second triplet objective, T_ANCE, whose negatives are
    # sampled from the model's own top-k neighbours, mined again before every epoch (itr.mining).
    ance_triplet: bool = False
    ance_top_k: int = 50
    ance_negatives: int = 7  # sampled negatives per positive pair and direction
    ance_batch_size: int = 16  # positive pairs per T_ANCE step (the released config)


@dataclasses.dataclass(frozen=True)
class CEConfig(_TrainSection):
    """Cross-encoder training (Geigle et al. 2022, §3.1): BCE on one positive and one negative per caption."""
    SECTION = "ce"
    p_replace_image: float = 0.5
    val_images: int = 50
    # E_ANCE: the chance a negative pair is drawn from the mined top-k neighbours, not uniformly (0 = the paper's E;
    # the released code's example used 0.05).
    ance_p: float = 0.0
    ance_top_k: int = 50


@dataclasses.dataclass(frozen=True)
class JointConfig(CEConfig, BEConfig):
    """JOINT training (§3.4): alternating triplet (BE) and BCE (CE) updates of one model: every BE and CE setting."""
    SECTION = "joint"


@dataclasses.dataclass(frozen=True)
class DualConfig(_TrainSection):
    """A dual transformer (itr.models.dual) trained with the CMC loss (Liu et al. 2023, §III), and its two-stage
    inference. Adam (AdamW without decay) with linear decay; the paper's StepLR is not used (params.yaml says why)."""
    SECTION = "dual"
    epochs: int = 2
    batch_size: int = 40
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 2.0
    dim: int = 256
    heads: int = 4
    ff: int = 512
    stage1_layers: int = 2
    stage2_layers: int = 2
    dropout: float = 0.1
    detach_stage1: bool = False  # True: the released code (nothing below stage 2 learns)
    margin: float = 0.2  # delta of the inter-modal hinge
    slack: float = 0.3  # sigma of the intra-modal term
    intra: str = "paper"  # itr.losses.INTRA_FORMS
    local_reduction: str = "mean"  # itr.models.alignment.REDUCTIONS: eq. 3's mean, or the released sum
    local_scale: float = 1.0  # the released code: 10
    loss_on: str = "both"  # the similarities the loss trains: both (eq. 7), global or local (Table VI)
    theta: float = 0.5  # eq. 8: weight of S_l in the two-stage score
    k: int = 100  # shortlist depth of two-stage inference
    theta_sweep: tuple = (0.0, 0.25, 0.5, 0.75, 1.0)
    k_sweep: tuple = (10, 20, 50, 100, 200)
    slack_sweep: tuple = (0.0, 0.1, 0.2, 0.3, 0.5)
    ablation_train_images: int = 500  # the budget of Table VI's and Figure 5's extra models
    ablation_epochs: int = 1


@dataclasses.dataclass(frozen=True)
class DisentangledConfig(_TrainSection):
    """A single-stream backbone run disentangled, with an alignment and a matching head (itr.models.disentangled),
    fine-tuned from a trained checkpoint (Messina et al. 2022). ``loss_weights``: alignment (the max-violation hinge on
    the alignment scores A), triplet (the same hinge on the matching scores M), distill (ListNet from A to M); the
    distill term waits ``distill_after_epochs`` epochs (the paper's warm-up). Adam (no decay) with linear decay; the
    release's StepLR is not used (params.yaml says why)."""
    SECTION = "disentangled"
    epochs: int = 1
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.0
    grad_clip: float = 2.0
    layers: int = 2
    heads: int = 4
    ff: int = 384
    dropout: float = 0.1
    object_tags: bool = True
    freeze_backbone: bool = False
    margin: float = 0.2
    tau: float = 6.0
    distill_after_epochs: int = 0
    loss_weights: Any = dataclasses.field(default_factory=lambda: {"alignment": 1.0, "triplet": 0.0, "distill": 1.0})

    @classmethod
    def cross_problems(cls, d: dict) -> list[str]:
        w = {k: d.get("loss_weights", cls().loss_weights).get(k, 0) for k in ("alignment", "triplet", "distill")}
        epochs, frozen = d.get("epochs", cls.epochs), d.get("freeze_backbone", cls.freeze_backbone)
        after = d.get("distill_after_epochs", cls.distill_after_epochs)
        if not epochs:
            return []
        if not any(v > 0 for v in w.values()):
            return ["every 'disentangled.loss_weights' is 0: nothing would learn (set epochs: 0 to publish the initial "
                    "model unchanged)"]
        if w["distill"] > 0 and not w["triplet"] and after >= epochs:
            return [f"'disentangled.distill_after_epochs' ({after}) >= epochs ({epochs}): the distill term would never "
                    "start; lower it"]
        # the alignment head has no weights: its loss trains only an unfrozen backbone
        if not ((w["alignment"] > 0 and not frozen) or w["triplet"] > 0 or (w["distill"] > 0 and after == 0)):
            return ["the first epoch would train nothing: the alignment head has no weights of its own, so with "
                    "'disentangled.freeze_backbone' only a matching loss (triplet, or distill from epoch 0) learns; "
                    "unfreeze the backbone, turn a matching loss on, or set epochs: 0 to publish the initial model"]
        return []

    @property
    def trains_matching(self) -> bool:
        """Whether a matching-head loss is on (then checkpoints are selected by the matching head's val rsum)."""
        return self.loss_weights["triplet"] > 0 or self.loss_weights["distill"] > 0


@dataclasses.dataclass(frozen=True)
class SoftLabelConfig(_TrainSection):
    """A soft-label student (itr.models.softlabel; Huang et al. 2024): ITC + alpha * CSA + beta * USA, teachers'
    similarities at ``teacher_tau``, the students' temperatures learned from ``itc_tau`` and ``soft_tau``;
    ``itc_reduction`` "sum" is the paper's InfoNCE, "mean" the release's (1/N of it); ``teacher_features``: the text
    teacher "disk" (computed once, itr.teachers) or "on_the_fly" (every step); ``image_tower``: "regions" (the
    bi-encoder's towers over the detector's regions) or "pixels" (a transformer from scratch over raw-pixel patches,
    ``pixel_tower``: patch size, layers, heads; itr.features.patches)."""
    SECTION = "softlabel"
    weight_decay: float = 0.0001
    alpha: float = 0.1
    beta: float = 0.5
    itc_tau: float = 0.05
    soft_tau: float = 0.45
    teacher_tau: float = 1.0
    itc_reduction: str = "sum"
    text_teacher: str = "minilm"
    teacher_features: str = "disk"
    sts_pairs: int = 2000
    alpha_sweep: tuple = (0.1, 0.3, 1.0)
    beta_sweep: tuple = (0.25, 0.5, 0.75)
    image_tower: str = "regions"
    pixel_tower: dict = dataclasses.field(default_factory=lambda: {"patch": 32, "layers": 4, "heads": 6})
    cost: dict = dataclasses.field(default_factory=lambda: {"rounds": 3, "steps": 5, "iterations": 20})
    ablation_epochs: int = 1

    @classmethod
    def cross_problems(cls, d: dict) -> list[str]:
        if d.get("precision", cls.precision) == "bf16":  # logits are cosines over a temperature down to 0.01
            return ["'softlabel.precision' bf16: its temperatures (down to 0.01) would amplify bf16's rounding of the "
                    "similarities a hundredfold; train it in fp32"]
        return []


@dataclasses.dataclass(frozen=True)
class RerankConfig(Section):
    """Retrieve and rerank (COOP): shortlist sizes, score fusion weights, the protocol CE rows use."""
    SECTION = "rerank"
    k: int = 20
    ks: tuple = (10, 20, 50)
    lambdas: tuple = (0.1, 0.5, 0.9)
    batch_size: int = 256
    precision: str = "fp32"
    protocol: str = "subset100"


@dataclasses.dataclass(frozen=True)
class IndexConfig(Section):
    SECTION = "index"
    factory: str = "Flat"
    search_params: str = ""
    # Named (factory, search_params) pairs for the reader to copy into the two keys above; no code reads them.
    presets: dict = dataclasses.field(default_factory=lambda: {
        "flat": {"factory": "Flat", "search_params": ""},
        "hnsw": {"factory": "HNSW32", "search_params": "efSearch=128"},
        "ivf": {"factory": "IVF64,Flat", "search_params": "nprobe=16"},
    })


@dataclasses.dataclass(frozen=True)
class EvalConfig(Section):
    SECTION = "evaluation"
    ks: tuple = (1, 5, 10)
    protocols: tuple = ("full", "folds", "subset")
    n_folds: int = 5
    subset_size: int = 200

    def subset_images(self, protocol: str) -> int | None:
        """Test images a subset protocol reads (``subset``: ``subset_size``; ``subset<N>``: N), else None.

        >>> EvalConfig().subset_images("subset100"), EvalConfig().subset_images("folds")
        (100, None)
        """
        if protocol == "subset" or (protocol.startswith("subset") and protocol[6:].isdigit()):
            return int(protocol[6:] or self.subset_size)
        return None


@dataclasses.dataclass(frozen=True)
class TrackingConfig(Section):
    SECTION = "tracking"
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "itr"


# The params sections that have a dataclass; the others are read by the workflow or benchmarks/latency.py only.
SECTIONS: dict[str, type[Section]] = {cls.SECTION: cls for cls in (
    ShapesConfig, DetectorConfig, FeaturesConfig, PretrainedFeaturesConfig, TextEncoderConfig, BEConfig, CEConfig, JointConfig, DualConfig,
    DisentangledConfig, SoftLabelConfig, RerankConfig, IndexConfig, EvalConfig, TrackingConfig)}
# Training methods (``itr train <method>``) -> the section holding their settings.
TRAIN_METHODS: dict[str, type[_TrainSection]] = {"be": BEConfig, "ce": CEConfig, "joint": JointConfig,
                                                 "cmc": DualConfig, "disentangled": DisentangledConfig,
                                                 "softlabel": SoftLabelConfig}
# Sections whose code draws random numbers, to which the workflow adds the global seed: every section whose
# dataclass has a seed field, and the latency benchmark (a script; its section has no dataclass).
SEEDED = frozenset({name for name, cls in SECTIONS.items() if any(f.name == "seed" for f in dataclasses.fields(cls))}
                   | {"benchmark"})


def parse_section(cls, text_or_dict, stage: str | None = None) -> Any:
    """Build config dataclass `cls` from a JSON string (as the CLI receives it) or a dict holding every key,
    except those that ``stage`` (a key of STAGE_UNREAD) does not read, checked against the section's schema
    (types, ranges, finite numbers) just as params.yaml is: a hand-run CLI gets the same checks as the workflow."""
    if isinstance(text_or_dict, str):
        try:
            d = json.loads(text_or_dict)
        except ValueError as e:
            raise ConfigError(f"the {cls.SECTION} config is not valid JSON ({e}): {text_or_dict[:80]!r}; pass a JSON "
                              "object such as the workflow's (snakemake -n -p shows each rule's command)") from e
    else:
        d = dict(text_or_dict)
    if not isinstance(d, dict):
        raise ConfigError(f"the {cls.SECTION} config must be a JSON object, got {type(d).__name__}")
    check_section(cls.SECTION, d)
    return cls.from_dict(d, unread_keys(stage, cls.SECTION))


