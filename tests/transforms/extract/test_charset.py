"""A page's bytes decoded as a browser settles their charset, the declared one not always right."""

from __future__ import annotations

from paircurate.transforms.extract.charset import decode_page

TEXT = "Une phrase française: été, où, garçon, déjà vu. " * 10


def test_the_declared_charset_decodes():
    page = f'<meta charset="windows-1252">{TEXT}'
    decoded = decode_page(page.encode("cp1252"), None)
    assert (decoded.text, decoded.how) == (page, "declared")


def test_latin1_is_read_as_windows_1252_as_browsers_do():
    decoded = decode_page("prix: 5 € ".encode("cp1252"), "ISO-8859-1")
    assert decoded.text == "prix: 5 € " and decoded.encoding == "cp1252"


def test_utf8_under_a_one_byte_label_is_read_as_utf8():
    decoded = decode_page(TEXT.encode("utf-8"), "iso-8859-1")
    assert (decoded.text, decoded.how) == (TEXT, "mismatch")


def test_bytes_the_declared_charset_cannot_decode_are_detected():
    decoded = decode_page(TEXT.encode("cp1252"), "utf-8")
    assert (decoded.text, decoded.how) == (TEXT, "mismatch")


def test_undeclared_bytes_that_are_not_utf8_are_detected():
    decoded = decode_page(TEXT.encode("cp1252"), None)
    assert (decoded.text, decoded.how) == (TEXT, "undeclared")


def test_an_unknown_label_falls_back_and_a_bom_wins():
    assert decode_page(b"plain ascii", "no-such-charset").text == "plain ascii"
    assert decode_page("\ufeffhé".encode("utf-8"), "windows-1252").text == "hé"
