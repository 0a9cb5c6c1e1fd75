# Sourced by scripts/test: Debian packages the tests use, installed when missing and we are root.
#   clang: the Metal kernels' source is compiled and run on the CPU;
#   xvfb + Qt's X11 libraries: the screenshot test runs the app on a virtual screen;
#   bubblewrap, libseccomp2: the Python tool's sandbox on Linux and its seccomp filter (tests/python_tool
#   prove its walls).
PACKAGES="clang bubblewrap libseccomp2 xvfb xauth libegl1 libgl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1
libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0 libfontconfig1 libdbus-1-3
fonts-dejavu-core tmux"
missing=""
if command -v dpkg >/dev/null 2>&1; then
    for p in $PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
fi
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq $missing >/dev/null \
            || echo "could not install:$missing (tests that need them will be skipped)"
    else
        echo "not installed:$missing (run as root or install them; tests that need them will be skipped)"
    fi
fi
