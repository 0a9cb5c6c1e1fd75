"""A hand-written stdio "MCP server" that breaks the protocol on purpose (the SDK's server can't).

    python raw_server.py bad_result   # a correct handshake and listing, then a tools/call result
                                      # that is not a CallToolResult
    python raw_server.py bad_schema   # lists one good tool and one whose inputSchema is not valid
"""
import json
import sys

GOOD = {"name": "ok", "description": "Fine.", "inputSchema": {"type": "object", "properties": {"x": {"type": "string"}}}}
BAD = {"name": "weird", "description": "Broken schema.", "inputSchema": {"type": "object", "properties": {"x": {"type": 12}}}}


def answer(msg_id, result):
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": result}) + "\n")
    sys.stdout.flush()


def main(mode):
    for line in sys.stdin:
        msg = json.loads(line)
        method, msg_id = msg.get("method"), msg.get("id")
        if msg_id is None:
            continue
        if method == "initialize":
            answer(msg_id, {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                            "serverInfo": {"name": "raw", "version": "0"}})
        elif method == "tools/list":
            answer(msg_id, {"tools": [GOOD, BAD] if mode == "bad_schema" else [GOOD]})
        elif method == "tools/call":
            answer(msg_id, {"content": "this is not a list of blocks", "isError": "maybe"})
        else:
            answer(msg_id, {})


if __name__ == "__main__":
    main(sys.argv[1])
