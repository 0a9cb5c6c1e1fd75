"""The app icon, drawn with QPainter (no binary art in the repo) and packed into an .icns.

We write the .icns ourselves (the format is a list of PNGs with 8-byte headers) so the icon is
made the same way on Linux and macOS; on a Mac, `iconutil -c icns` on the .iconset folder written
next to it gives an equivalent file. Run `python packaging/bundle_icon.py OUT_DIR` to look at it.
"""
from __future__ import annotations

import struct
import sys
from pathlib import Path

# ICNS entry types holding PNG data, by pixel size (Apple's "iconutil" names in comments).
ICNS_TYPES = [
    (b"icp4", 16),    # icon_16x16
    (b"icp5", 32),    # icon_32x32
    (b"ic11", 32),    # icon_16x16@2x
    (b"icp6", 64),
    (b"ic12", 64),    # icon_32x32@2x
    (b"ic07", 128),   # icon_128x128
    (b"ic08", 256),   # icon_256x256
    (b"ic13", 256),   # icon_128x128@2x
    (b"ic09", 512),   # icon_512x512
    (b"ic14", 512),   # icon_256x256@2x
    (b"ic10", 1024),  # icon_512x512@2x
]
ICONSET_NAMES = {16: ["icon_16x16.png"], 32: ["icon_16x16@2x.png", "icon_32x32.png"],
                 64: ["icon_32x32@2x.png"], 128: ["icon_128x128.png"],
                 256: ["icon_128x128@2x.png", "icon_256x256.png"],
                 512: ["icon_256x256@2x.png", "icon_512x512.png"], 1024: ["icon_512x512@2x.png"]}


def _app():
    """QPainter on a QImage needs a QGuiApplication for antialiasing backends; offscreen is enough."""
    from PySide6.QtGui import QGuiApplication
    app = QGuiApplication.instance()
    if app is None:
        app = QGuiApplication(["bundle_icon", "-platform", "offscreen"])
    return app


def render_png(size: int) -> bytes:
    """The icon at `size` x `size` pixels, as PNG bytes: a chat bubble on a rounded deep-blue tile."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt
    from PySide6.QtGui import QBrush, QColor, QImage, QLinearGradient, QPainter, QPainterPath

    _app()
    img = QImage(size, size, QImage.Format.Format_ARGB32)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.scale(size / 1024, size / 1024)          # draw in a 1024 grid, Apple's template size
    p.setPen(Qt.PenStyle.NoPen)

    tile = QRectF(100, 100, 824, 824)           # macOS icons leave a margin around the tile
    grad = QLinearGradient(tile.topLeft(), tile.bottomRight())
    grad.setColorAt(0, QColor("#1f3b73"))
    grad.setColorAt(1, QColor("#0f8b8d"))
    p.setBrush(QBrush(grad))
    p.drawRoundedRect(tile, 185, 185)

    bubble = QPainterPath()
    bubble.addRoundedRect(QRectF(230, 270, 564, 400), 120, 120)
    tail = QPainterPath()
    tail.moveTo(QPointF(330, 640))
    tail.lineTo(QPointF(290, 790))
    tail.lineTo(QPointF(470, 660))
    tail.closeSubpath()
    p.setBrush(QColor("#f5f7fa"))
    p.drawPath(bubble.united(tail))

    p.setBrush(QColor("#1f3b73"))                # three "typing" dots: a model answering
    for x in (380, 512, 644):
        p.drawEllipse(QPointF(x, 470), 48, 48)
    p.end()

    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    img.save(buf, "PNG")
    buf.close()
    return bytes(data.data())


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    """Pack PNGs (by pixel size) into the ICNS container: 'icns' + length, then type + length + data."""
    body = b"".join(t + struct.pack(">I", len(pngs[s]) + 8) + pngs[s] for t, s in ICNS_TYPES)
    return b"icns" + struct.pack(">I", len(body) + 8) + body


def read_icns(data: bytes) -> dict[bytes, bytes]:
    """The entries of an .icns file by type (used to check what we wrote)."""
    if data[:4] != b"icns" or struct.unpack(">I", data[4:8])[0] != len(data):
        raise ValueError("not an icns file")
    out, pos = {}, 8
    while pos < len(data):
        kind, length = data[pos:pos + 4], struct.unpack(">I", data[pos + 4:pos + 8])[0]
        out[kind] = data[pos + 8:pos + length]
        pos += length
    return out


def write_icon(out_dir: Path, name: str = "gpt-oss-chat") -> Path:
    """Write `name`.icns, `name`.iconset/ (for iconutil) and `name`.png (1024, for Linux) into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pngs = {s: render_png(s) for s in sorted({s for _, s in ICNS_TYPES})}
    iconset = out_dir / f"{name}.iconset"
    iconset.mkdir(exist_ok=True)
    for size, names in ICONSET_NAMES.items():
        for n in names:
            (iconset / n).write_bytes(pngs[size])
    (out_dir / f"{name}.png").write_bytes(pngs[1024])
    icns = out_dir / f"{name}.icns"
    icns.write_bytes(icns_bytes(pngs))
    return icns


if __name__ == "__main__":
    print(write_icon(Path(sys.argv[1] if len(sys.argv) > 1 else "build/icon")))
