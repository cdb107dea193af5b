"""The machine fingerprint every metrics file records (itr.machine)."""
import json

from itr.machine import cpu_info, fingerprint

CPUINFO = """processor	: 0
vendor_id	: GenuineIntel
model name	: Intel(R) Xeon(R) Platinum 8480+
flags		: fpu sse2 avx avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
processor	: 1
model name	: Intel(R) Xeon(R) Platinum 8480+
flags		: fpu sse2 avx avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
"""


def test_cpu_model_and_the_isa_features_that_change_rounding():
    model, isa = cpu_info(CPUINFO)
    assert model == "Intel(R) Xeon(R) Platinum 8480+"
    assert isa == ["avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"]
    assert cpu_info("model name : AMD EPYC 7B13\nflags : avx avx2 fma\n")[1] == ["avx", "avx2", "fma"]


def test_the_id_tells_exact_agreement_apart():
    one, again, two = fingerprint(threads=1), fingerprint(threads=1), fingerprint(threads=2)
    assert one == again and one["id"] != two["id"]  # thread count decides bit-exact results, so it is in the id
    assert one["cpu"] and one["torch"] and one["faiss"] and one["numpy"]


def test_torch_is_recorded_by_the_jobs_that_use_it_and_never_imported_for_the_record():
    import subprocess
    import sys

    code = ("import sys, json; from itr.machine import fingerprint; before = fingerprint(); "
            "loaded = 'torch' in sys.modules; import torch; "
            "print(json.dumps([loaded, before['torch'], before['threads'], fingerprint()['torch']]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    imported_for_the_record, unused, threads, used = json.loads(out)
    assert not imported_for_the_record and unused is None and threads is None
    assert used  # recorded once the job has imported torch


def test_every_metrics_file_records_the_machine(tmp_path):
    import numpy as np

    from itr.config import EvalConfig
    from itr.evaluate import evaluate_collection
    from itr.index import save_collection

    rng = np.random.default_rng(0)
    img, cap = rng.standard_normal((10, 8)).astype("float32"), rng.standard_normal((20, 8)).astype("float32")
    ids = [f"i{n}" for n in range(10)]
    save_collection(tmp_path, img, cap, ids, [f"c{n}" for n in range(20)], "Flat", "",
                    {"model_id": "m", "split": "test", "caption_image_ids": [i for i in ids for _ in range(2)]})
    result = evaluate_collection(tmp_path, EvalConfig(), "full")
    assert result["machine"]["id"] == fingerprint(threads=result["machine"]["threads"])["id"]


def test_a_checkpoint_records_where_it_trained(tiny_pipeline):
    from itr.checkpoint import load_checkpoint

    root, _ = tiny_pipeline
    machine = load_checkpoint(root / "be.pt")["machine"]  # loads with weights_only: plain types only
    assert machine["cpu"] == cpu_info()[0] and machine["id"]
