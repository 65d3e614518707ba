"""Values from the notebook as prompt text: whole tables and arrays, a note instead of a screen repr."""

import io

import numpy
import pandas
import pytest

from claude_force_nb._notebook.values import as_text

FRAME = pandas.DataFrame({"name": [f"n{i}" for i in range(100)], "val": range(100)})


def test_a_data_frame_goes_whole_as_csv_not_as_its_screen_repr():
    text, note = as_text(FRAME, "df")
    assert note is None and ".." not in text
    assert text.splitlines()[0] == "name,val" and text.splitlines()[-1] == "n99,99"
    assert len(text.splitlines()) == 101


def test_a_meaningful_index_is_kept():
    text, _ = as_text(FRAME.set_index("name").head(2), "df")
    assert text == "name,val\nn0,0\nn1,1"


def test_a_frame_over_the_limit_is_cut_at_a_row_with_a_note():
    text, note = as_text(FRAME, "df", limit=100)
    assert len(text) <= 100 and text.splitlines()[-1].count(",") == 1
    assert note.startswith("{df}: sent the first ") and "of 100 rows" in note and "df.iloc[a:b]" in note


def test_a_cut_never_splits_a_quoted_multi_line_cell():
    frame = pandas.DataFrame({"note": [f"line one\nline, two {i}" for i in range(50)], "n": range(50)})
    text, note = as_text(frame, "df", limit=300)
    back = pandas.read_csv(io.StringIO(text))
    assert list(back.columns) == ["note", "n"] and back["note"].tolist() == frame["note"][: len(back)].tolist()
    assert f"sent the first {len(back)} of 50 rows" in note


def test_columns_wider_than_the_limit_send_nothing_and_say_so():
    wide = pandas.DataFrame({f"column_{i}": [i] for i in range(40)})
    assert as_text(wide, "df", limit=100) == (
        None,
        "{df}: its column names alone exceed 100 characters; send fewer columns.",
    )


def test_a_huge_array_is_cut_from_a_formatted_prefix():
    text, note = as_text(numpy.arange(10_000_000).reshape(1_000, 10_000), "big", limit=1_000)
    assert len(text) <= 1_004 and text.replace(" ", "").startswith("[[0,1,2")
    assert note.startswith("{big}: sent the first 1,000 characters of a 1000x10000 array")


def test_a_row_or_series_goes_as_label_value_lines():
    row = FRAME.iloc[3]
    assert as_text(row, "item") == ("name: n3\nval: 3", None)


def test_an_array_goes_in_full():
    text, note = as_text(numpy.arange(2000), "a")
    assert note is None and "..." not in text and "1999" in text
    cut, note = as_text(numpy.arange(20000), "a", limit=500)
    assert len(cut) <= 504 and note.startswith("{a}: sent the first 500 characters of a 20000 array")


class Opaque:
    pass


def test_an_object_with_only_a_default_repr_is_not_sent():
    text, note = as_text(Opaque(), "thing")
    assert text is None and "(Opaque) has no text form" in note and "__str__" in note


def test_an_image_is_named_in_the_text_not_sent_as_its_repr():
    from IPython.display import Image

    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    assert as_text(Image(data=png, format="png"), "img") == ("[image: img]", None)


@pytest.mark.parametrize("value", ["words", 3, [1, 2], {"k": "v"}])
def test_everything_else_is_its_str(value):
    assert as_text(value, "x") == (str(value), None)
