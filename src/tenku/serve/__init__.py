"""``tenku serve``: an HTTP server in the shape of OpenAI's Videos API (so the official
``openai`` client works by changing ``base_url``), a durable SQLite job queue with workers
that survives restarts, and a web page. See docs/serve.md."""

from tenku.serve.app import create_app
from tenku.serve.config import ServeConfig

__all__ = ["ServeConfig", "create_app"]
