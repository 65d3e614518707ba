"""Figures, images and files go as real image and document blocks, checked by the local server as the API does."""

from __future__ import annotations

import base64

import matplotlib
import pytest
from IPython.core.error import UsageError
from IPython.display import Image

from claude_force_nb._notebook.media import MAX_IMAGE_EDGE, file_block, image_block

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def calls(server):
    return [r for r in server.log if r.path == "/v1/messages"]


@pytest.fixture
def figure():
    fig, axes = plt.subplots(figsize=(4, 3), dpi=100)
    axes.plot([1, 2, 3], [2, 4, 1])
    yield fig
    plt.close("all")


def png_bytes(fig) -> bytes:
    block, _ = image_block(fig, "fig")
    return base64.b64decode(block["source"]["data"])


def test_a_figure_becomes_a_png_block(figure):
    block, note = image_block(figure, "fig")
    assert block["type"] == "image" and block["source"]["media_type"] == "image/png" and note is None
    assert png_bytes(figure).startswith(b"\x89PNG")


def test_a_figure_too_large_for_the_api_is_drawn_smaller_with_a_note():
    fig = plt.figure(figsize=(100, 10), dpi=100)  # 10,000 pixels wide
    block, note = image_block(fig, "wide")
    plt.close(fig)
    assert f"to fit the API's {MAX_IMAGE_EDGE} pixels a side" in note
    assert block["source"]["media_type"] == "image/png"


def test_an_image_by_url_or_without_bytes_is_refused():
    with pytest.raises(UsageError, match="is an image by URL"):
        image_block(Image(url="https://example.com/a.png"), "remote")


def test_files_go_as_documents(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("The batch ran twice.")
    assert file_block(str(text))["source"] == {
        "type": "text",
        "media_type": "text/plain",
        "data": "The batch ran twice.",
    }
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n%%EOF\n")
    block = file_block(str(pdf))
    assert block["source"]["media_type"] == "application/pdf" and block["title"] == "report.pdf"
    with pytest.raises(UsageError, match="no such file"):
        file_block(str(tmp_path / "missing.pdf"))
    binary = tmp_path / "data.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(UsageError, match="neither a PDF nor UTF-8 text"):
        file_block(str(binary))


def test_a_figure_in_a_cell_is_sent_as_an_image_and_changes_the_key(ip, server, figure, capsys):
    ip.user_ns["fig"] = figure
    ip.run_cell_magic("agent", "explainer -o first;", "What does {fig} show?")
    content = calls(server)[-1].body["messages"][-1]["content"]
    assert [block["type"] for block in content] == ["image", "text"]
    assert content[1]["text"] == "What does [image: fig] show?"
    assert "1 image" in ip.user_ns["first"].output  # the server says what it received
    figure.axes[0].plot([1, 2, 3], [3, 3, 3])
    ip.run_cell_magic("agent", "explainer -o second;", "What does {fig} show?")
    assert not ip.user_ns["second"].cached  # a changed figure is another request


def test_files_and_open_figures_attach_from_the_magic_line(ip, server, figure, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("Sales fell in March.")
    ip.run_cell_magic("agent", f"explainer --file {notes} --figure -o r;", "Explain the chart with the notes.")
    content = calls(server)[-1].body["messages"][-1]["content"]
    assert [block["type"] for block in content] == ["document", "image", "text"]
    with pytest.raises(UsageError, match=r"--file .*missing\.pdf: no such file"):
        ip.run_cell_magic("agent", f"explainer --file {tmp_path / 'missing.pdf'}", "x")


def test_a_pil_image_in_cmyk_or_too_large_is_converted_and_made_to_fit():
    from PIL import Image as PILImage

    cmyk = PILImage.new("CMYK", (40, 30))
    block, note = image_block(cmyk, "scan")
    assert block["source"]["media_type"] == "image/png" and note is None
    huge = PILImage.effect_noise((9000, 300), 64)  # noise: it does not compress
    block, note = image_block(huge, "noise")
    assert "was resized to" in note and len(block["source"]["data"]) <= 5 * 1024 * 1024


def test_the_errors_kept_stay_bounded():
    from claude_force_nb._notebook.errors import Errors

    errors = Errors(keep=3)
    for number in range(10):
        errors.add(number, "x", ValueError(number))
    assert len(errors) == 3 and errors[-1].number == 9
    with pytest.raises(KeyError):
        errors[0]


def test_a_file_or_image_too_large_for_the_api_is_refused_before_anything_is_sent(ip, server, tmp_path):
    big = tmp_path / "huge.pdf"
    with big.open("wb") as handle:  # sparse: 33 MB on paper, nothing on disk
        handle.write(b"%PDF-1.4\n")
        handle.truncate(33 * 1024 * 1024)
    with pytest.raises(UsageError, match="the API takes files of at most 32 MB"):
        ip.run_cell_magic("agent", f"explainer --file {big}", "Summarise it.")
    ip.user_ns["photo"] = Image(data=b"\x89PNG\r\n\x1a\n" + b"\x00" * (4 * 1024 * 1024))
    with pytest.raises(UsageError, match=r"\{photo\} is 5\.3 MB as base64; the API takes images of at most 5 MB"):
        ip.run_cell_magic("agent", "explainer", "What is in {photo}?")
    assert calls(server) == []
