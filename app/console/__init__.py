"""The operator console: server-rendered pages whose scripts call the JSON API."""
