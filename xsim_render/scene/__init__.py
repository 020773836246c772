"""Scene graph: Gaussians (static + rigid actors), trajectories, sky, decoders, and their file formats."""

from .actors import Actor, Trajectory
from .gaussians import GaussianScene
from .sky import Sky

__all__ = ["Actor", "GaussianScene", "Sky", "Trajectory"]
