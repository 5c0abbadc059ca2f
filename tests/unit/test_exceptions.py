"""The one-line error text every user-facing message is built from."""

from vo2dr.exceptions import one_line


def test_first_line_of_the_message():
    assert one_line(RuntimeError("  connection refused\n\tIs the server running?")) == \
        "connection refused"


def test_an_empty_message_falls_back_to_the_type_name():
    assert one_line(TimeoutError()) == "TimeoutError"
    assert one_line("") == ""


def test_plain_text_and_the_length_cap():
    assert one_line("pg_restore: error: bad archive\nmore") == "pg_restore: error: bad archive"
    assert one_line(ValueError("x" * 1000), 400) == "x" * 400
