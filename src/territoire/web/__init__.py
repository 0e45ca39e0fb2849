"""Web shell: layout, pages, static files and interface catalogues."""
