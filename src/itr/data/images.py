"""Image loading with errors that name the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from itr.data.dataset import REBUILD
from itr.errors import InputError


class ImageError(InputError, ValueError):
    """An image file is missing or cannot be decoded."""


def load_image(path: str | Path) -> torch.Tensor:
    """RGB image as a float tensor in [0, 1], shape (3, H, W)."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except FileNotFoundError as e:
        raise ImageError(f"{path}: image not found; rebuild the dataset: {REBUILD}") from e
    except (UnidentifiedImageError, OSError) as e:
        raise ImageError(f"{path}: corrupt or unreadable image ({e}); rebuild the dataset: {REBUILD}") from e
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()  # (3, H, W)
