"""The offline demo and its fixtures: tiny model, synthetic benchmark, answer prior, recipe, bundle.

Built on app.quality (never the reverse)."""
