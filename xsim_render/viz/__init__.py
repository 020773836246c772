"""Pictures of renders: colour-mapped depth/range images, bird's-eye views, contact sheets (matplotlib, Agg)."""
