"""Route handlers, grouped by area; `create_app` registers them."""
