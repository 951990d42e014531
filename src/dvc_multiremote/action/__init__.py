"""The GitHub Action: a thin shell over the library (``main`` reads as the pipeline)."""
