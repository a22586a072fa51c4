"""The service's routers, one module per area; ``serving.app`` includes them."""
