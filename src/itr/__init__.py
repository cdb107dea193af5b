"""itr: reproducible, efficient image-text retrieval research workflow."""
__version__ = "0.1.0"
