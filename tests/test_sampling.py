import numpy as np

from itr.sampling import sample_match_pairs


def test_each_caption_gives_its_positive_and_one_true_negative():
    labels = np.repeat(np.arange(50), 5)  # 50 images x 5 captions
    rows = np.arange(0, 250, 3)
    caps, imgs, y = sample_match_pairs(rows, labels, 50, np.random.default_rng(0))
    b = len(rows)
    assert y.tolist() == [1] * b + [0] * b
    assert (caps[:b] == rows).all() and (imgs[:b] == labels[rows]).all()  # positives: caption with its image
    assert (labels[caps[b:]] != imgs[b:]).all()  # every negative pair is a mismatch
    # each negative keeps exactly one side of its source pair
    kept_caption = caps[b:] == rows
    kept_image = imgs[b:] == labels[rows]
    assert (kept_caption ^ kept_image).all()


def test_image_or_caption_is_replaced_with_probability_p():
    labels = np.repeat(np.arange(100), 5)
    rows = np.arange(500)
    for p in (0.5, 0.2):
        _, imgs, _ = sample_match_pairs(rows, labels, 100, np.random.default_rng(1), p_replace_image=p)
        replaced_image = imgs[500:] != labels
        assert abs(replaced_image.mean() - p) < 0.06


def test_negatives_are_uniform_over_other_images():
    labels = np.repeat(np.arange(4), 2)
    rows = np.zeros(4000, dtype=int)  # always a caption of image 0
    _, imgs, _ = sample_match_pairs(rows, labels, 4, np.random.default_rng(2), p_replace_image=1.0)
    counts = np.bincount(imgs[4000:], minlength=4)
    assert counts[0] == 0
    assert np.all(np.abs(counts[1:] / 4000 - 1 / 3) < 0.03)


def test_same_seed_same_pairs():
    labels = np.repeat(np.arange(10), 5)
    a = sample_match_pairs(np.arange(20), labels, 10, np.random.default_rng([0, 3, 7]))
    b = sample_match_pairs(np.arange(20), labels, 10, np.random.default_rng([0, 3, 7]))
    assert all((x == y).all() for x, y in zip(a, b))
