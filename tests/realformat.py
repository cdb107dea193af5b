"""Stand-ins for the outside world of real datasets: a loopback HTTP server (with Range, cuts and failures),
torchvision's published detector files (random weights, exact format), and a dataset in Karpathy's release format."""
import hashlib
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch


class Server:
    """Serves ``files`` {path: bytes}; ``cut`` {path: n}: the next responses for path stop after n bytes (once each,
    in order); ``broken`` paths answer 500. ``requests`` records (path, Range header) of every GET."""

    def __init__(self):
        self.files, self.cut, self.broken, self.requests = {}, {}, set(), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                if self.path in server.broken:
                    self.send_error(500)
                    return
                if self.path not in server.files:
                    self.send_error(404)
                    return
                body, start = server.files[self.path], 0
                if rng:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                cuts = server.cut.get(self.path)
                if cuts:
                    self.wfile.write(body[start:start + cuts.pop(0)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def published(tmp_path, arch, frozen_bn=False):
    """A random-weight state dict saved under torchvision's name pattern, sha256 prefix included."""
    from torchvision.models import detection

    torch.manual_seed(0)
    state = getattr(detection, arch)(weights=None, weights_backbone=None, num_classes=91).state_dict()
    if frozen_bn:  # v1's published file comes from FrozenBatchNorm2d: no num_batches_tracked
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    tmp = tmp_path / "w.pth"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    return tmp.rename(tmp_path / f"{arch}_coco-{digest[:8]}.pth")


def karpathy_release(data: Path, restval: int = 4) -> tuple[dict[str, bytes], dict]:
    """A canonical dataset (ShapeCaptions, here) re-packed as COCO's release: ``caption_datasets.zip`` holding
    ``dataset_coco.json`` in Karpathy's format, and the images as JPEGs in ``train2014.zip`` / ``val2014.zip``.

    Returns ({file name: bytes}, {cocoid: (split, [captions])}): the files, and what an import must give back
    (the last ``restval`` train images are marked restval and live in val2014, as COCO's do).
    """
    import pandas as pd
    from PIL import Image

    images = pd.read_parquet(data / "images.parquet")
    captions = pd.read_parquet(data / "captions.parquet")
    by_image = captions.groupby("image_id")["text"].apply(list).to_dict()
    restval_ids = set(images[images.split == "train"].image_id.tolist()[-restval:])
    archives = {folder: io.BytesIO() for folder in ("train2014", "val2014")}
    zips = {folder: zipfile.ZipFile(buf, "w") for folder, buf in archives.items()}
    entries, expected = [], {}
    for n, row in enumerate(images.itertuples()):
        split = "restval" if row.image_id in restval_ids else row.split
        folder = "train2014" if split == "train" else "val2014"
        name, cocoid = f"COCO_{folder}_{n:012d}.jpg", 100000 + n
        jpeg = io.BytesIO()
        Image.open(data / row.file).convert("RGB").save(jpeg, "JPEG", quality=95)
        zips[folder].writestr(f"{folder}/{name}", jpeg.getvalue())
        texts = by_image[row.image_id]
        entries.append({"filepath": folder, "filename": name, "imgid": n, "split": split, "cocoid": cocoid,
                        "sentids": [5 * n + k for k in range(len(texts))],
                        "sentences": [{"raw": t + " ", "tokens": t.lower().split(), "imgid": n, "sentid": 5 * n + k}
                                      for k, t in enumerate(texts)]})
        expected[str(cocoid)] = ("train" if split == "restval" else split, texts)
    for z in zips.values():
        z.close()
    captions_zip = io.BytesIO()
    with zipfile.ZipFile(captions_zip, "w") as z:
        z.writestr("dataset_coco.json", json.dumps({"dataset": "coco", "images": entries}))
    files = {"caption_datasets.zip": captions_zip.getvalue(),
             **{f"{folder}.zip": buf.getvalue() for folder, buf in archives.items()}}
    return files, expected


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
