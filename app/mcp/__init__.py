"""MCP tool servers in the app (never offered through the local API to its clients).

config    mcp.json (LM Studio's / Claude Desktop's shape): parse, save, import
chats     which servers each chat may call, and the tools it always allows
tools     MCP tools as harmony functions (names, readable schemas)
manager   the servers' lifecycle and calls, on the client's own asyncio thread
results   a tool's answer -> the text the model reads (capped) and images for the user
redact    secrets never shown or logged
command   finding `npx`/`uvx` when the app was started from the Finder
"""
