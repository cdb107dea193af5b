"""transformers, imported without two optional dependencies this project never uses: only the tiny-BERT writer
(itr.models.tiny) imports it; every job reads checkpoints with itr.models.bert, without transformers.

When they are installed (scikit-learn comes with MLflow), transformers imports scikit-learn for assisted text
generation and SciPy's optimizer for object-detection losses. Neither runs here, and together they cost about
1.8 s of every process that loads transformers' models. Marking them unavailable before the model modules load
leaves them out; tests/test_layers.py checks that importing this imports neither, so a transformers release that
changes how it finds them is noticed.

Example:
    >>> from itr.models.hf import BertModel
"""
import transformers.utils.import_utils as _import_utils

_import_utils._sklearn_available = False  # transformers.generation.candidate_generator
_import_utils._scipy_available = False  # transformers.loss.loss_for_object_detection and siblings

from transformers import AutoTokenizer, BertConfig, BertModel, BertTokenizerFast  # noqa: E402

__all__ = ["AutoTokenizer", "BertConfig", "BertModel", "BertTokenizerFast"]
