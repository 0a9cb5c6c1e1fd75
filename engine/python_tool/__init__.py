"""gpt-oss's built-in `python` tool: a stateful Jupyter kernel per chat, sandboxed (bubblewrap on
Linux, sandbox-exec on macOS), with a timeout, memory, process, file and output limits, no network.
No Qt, no MLX. See docs/python_tool.md."""

from engine.python_tool.limits import Limits
from engine.python_tool.output import ToolOutput, read_image
from engine.python_tool.pool import PythonToolPool
from engine.python_tool.sandbox import sandbox_problem
from engine.python_tool.tool import PythonTool, tool_description

__all__ = ["Limits", "PythonTool", "PythonToolPool", "ToolOutput", "read_image", "sandbox_problem", "tool_description"]
