"""srcset, sizes and media queries as the HTML standard reads them, and the source picked."""

from __future__ import annotations

import pytest

from paircurate.transforms.extract.srcset import (
    Candidate,
    media_matches,
    parse_srcset,
    pick,
    slot_size,
)


def test_candidates_with_commas_inside_urls_and_descriptors():
    value = " a.jpg 1x,https://cdn.test/w_300,h_200/b.jpg 2x ,  c.jpg,  d.jpg 640w 480h"
    assert parse_srcset(value) == [
        Candidate("a.jpg", 1.0),
        Candidate("https://cdn.test/w_300,h_200/b.jpg", 2.0),
        Candidate("c.jpg"),
        Candidate("d.jpg", width=640),
    ]


@pytest.mark.parametrize(
    "value", ["a.jpg 0x", "a.jpg 2x 3x", "a.jpg 100w 2x", "a.jpg -1w", "a.jpg big"]
)
def test_invalid_candidates_are_left_out(value):
    assert parse_srcset(value + ", ok.jpg 2x") == [Candidate("ok.jpg", 2.0)]


def test_media_queries_for_a_viewport():
    assert media_matches("(min-width: 800px)", 1280)
    assert not media_matches("(max-width: 600px)", 1280)
    assert media_matches("screen and (min-width: 40em) and (max-width: 1400px)", 1280)
    assert not media_matches("(orientation: portrait)", 1280)  # not evaluated: false
    assert media_matches(None, 1280)


def test_sizes_takes_the_first_matching_entry_else_the_viewport():
    assert slot_size("(max-width: 600px) 100vw, 800px", 1280, None) == 800
    assert slot_size("(max-width: 600px) 100vw, 800px", 500, None) == 500
    assert slot_size("(min-width: 1000px) 50vw, 100vw", 1280, None) == 640
    assert slot_size("calc(100vw - 2em)", 1280, None) == 1280
    assert slot_size("auto", 1280, 300) == 300


def test_width_descriptors_pick_the_smallest_dense_enough():
    candidates = parse_srcset("s.jpg 320w, m.jpg 1024w, l.jpg 2048w")
    sizes = "(max-width: 600px) 100vw, 800px"
    assert pick(candidates, "s.jpg", sizes, 1280, 1.0) == ("m.jpg", True)
    assert pick(candidates, "s.jpg", sizes, 1280, 2.0) == ("l.jpg", True)
    assert pick(candidates, "s.jpg", sizes, 400, 1.0) == ("m.jpg", True)
    assert pick(candidates, "s.jpg", sizes, 1280, 3.0) == ("l.jpg", True)  # none enough: largest


def test_src_is_the_one_x_candidate_of_a_density_set():
    candidates = parse_srcset("b.jpg 2x, c.jpg 3x")
    assert pick(candidates, "a.jpg", None, 1280, 1.0) == ("a.jpg", False)
    assert pick(candidates, "a.jpg", None, 1280, 2.0) == ("b.jpg", True)
    assert pick([], "a.jpg", None, 1280, 1.0) == ("a.jpg", False)
    assert pick([], None, None, 1280, 1.0) is None
