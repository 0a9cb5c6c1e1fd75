"""A code block deleted right after Copy must not leave a timer pointing at its dead button."""

from PySide6.QtCore import QTimer

from app.ui.markdown_view import CodeBlock


def test_copy_then_delete_leaves_no_dangling_timer(qtbot):
    block = CodeBlock("print('hi')", "python")
    qtbot.addWidget(block)
    block.copy()
    assert block.copy_button.text() == "Copied"
    # A marker started after Copy's 1.5 s reset fires after it: once it has, the reset's moment has
    # passed (pytest-qt fails the test on an exception raised in the event loop).
    passed = []
    QTimer.singleShot(1501, lambda: passed.append(True))
    block.deleteLater()
    qtbot.waitUntil(lambda: bool(passed), timeout=30000)


def test_the_reset_timer_does_fire_on_a_live_block(qtbot):
    """The test above waits for a timer that does run: on a live block it puts "Copy" back."""
    block = CodeBlock("print('hi')", "python")
    qtbot.addWidget(block)
    block.copy()
    qtbot.waitUntil(lambda: block.copy_button.text() == "Copy", timeout=30000)
