"""A code block deleted right after Copy must not leave a timer pointing at its dead button."""

from app.ui.markdown_view import CodeBlock


def test_copy_then_delete_leaves_no_dangling_timer(qtbot):
    block = CodeBlock("print('hi')", "python")
    qtbot.addWidget(block)
    block.copy()
    assert block.copy_button.text() == "Copied"
    block.deleteLater()
    qtbot.wait(1700)  # past the 1.5 s reset: pytest-qt fails the test on an exception in the loop
