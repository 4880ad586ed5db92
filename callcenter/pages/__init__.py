"""The staff's pages in the browser (server-rendered, htmx), in Chinese by default."""
