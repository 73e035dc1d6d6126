"""bench/shape_head.py: the per-cell shape labels its head learns."""


def test_cell_labels_mark_each_box_with_its_shape_and_leave_shared_cells_out(bench_module):
    labels = bench_module("shape_head").cell_labels
    gt = {"bbox": [[[0, 0, 15, 15]], [[8, 8, 23, 15]], [[40, 40, 47, 47]]],  # pixels; 8 a latent cell
          "visible": [[True], [True], [False]]}  # the third object is out of sight in frame 0
    y = labels(gt, ["star", "ring", "circle"], (6, 6), 8)
    assert y.shape == (6, 6)
    assert y[0, 0] == 1 + 3 and y[0, 1] == 1 + 3  # star: cells (0, 0) to (1, 1)
    assert y[1, 1] == -100  # shared by the star's and the ring's boxes
    assert y[1, 2] == 1 + 1  # ring only
    assert y[5, 5] == 0 and (y == 0).sum() == 36 - 5  # background; the hidden circle marks nothing
