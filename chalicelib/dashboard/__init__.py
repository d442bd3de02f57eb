"""The browser dashboard: its static files (`static/`) and the allow-listed way to serve them
(`assets`). The page talks to the API over HTTP only.

May import: `chalicelib.core`. No domain package.
"""
