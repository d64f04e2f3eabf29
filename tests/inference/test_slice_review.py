"""The slices named for review beside the least confident: nothing predicted, a tumour predicted next door."""

from kerasbrain.inference.slice_review import missed_end_candidates, next_to_predicted_tumour, slice_key


def test_a_slice_is_named_when_a_neighbour_of_the_same_patient_has_a_predicted_tumour():
    slices = {("A", 1): False, ("A", 2): True, ("A", 3): True, ("A", 4): False, ("A", 6): False,
              ("B", 5): False, ("B", 7): True, ("A", 5): False}
    # A4 follows A3's tumour; A1 precedes A2's; A5 and A6 are two away; B5 is two away from B7 (B6 unread);
    # A's slices never count for B
    assert next_to_predicted_tumour(slices) == {("A", 1), ("A", 4)}
    assert next_to_predicted_tumour({("A", 1): False}) == set()


def test_a_folders_rows_by_their_kaggle_names():
    assert slice_key("TCGA_CS_4941_19960909_12") == ("TCGA_CS_4941_19960909", 12)
    assert slice_key("scan") is None
    rows = [{"case": "P_1", "tumour_pixels": 0}, {"case": "P_2", "tumour_pixels": 40},
            {"case": "P_3", "tumour_pixels": 0},
            {"case": "P_10", "tumour_pixels": "0"}, {"case": "P_11", "tumour_pixels": "7"},
            {"case": "P_4", "tumour_pixels": ""}, {"case": "notes", "tumour_pixels": 0}]
    assert missed_end_candidates(rows) == ["P_1", "P_10", "P_3"]  # name order; a failed row (no pixels) is no slice
    assert missed_end_candidates([{"case": "BRATS_001", "status": "ok"}]) == []  # a volume folder: nothing to say
